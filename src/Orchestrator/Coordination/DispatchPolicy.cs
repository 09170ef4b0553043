using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Coordination;

/// <summary>Which ready trial goes to which idle worker slot: a pure decision over the sweep state, tested without actors.</summary>
public static class DispatchPolicy
{
    /// <summary>
    /// The starts to persist now: the trials ready at <paramref name="now"/> (queued, back-off over;
    /// <see cref="SweepState.ReadyToRun"/>'s order), each to an idle slot, as many as there are idle
    /// slots. A trial goes to a slot other than the one it last ran on when one is idle (a slot
    /// that failed it may fail it again), else to the first idle slot. Each start is the trial's
    /// next attempt, from its last checkpoint.
    /// </summary>
    /// <typeparam name="TSlot">What the caller knows a slot by (the coordinator: the slot actor's reference).</typeparam>
    /// <param name="idle">The slots that take trials and run none, in the order they are preferred.</param>
    /// <param name="held">Trials not to start now: events about them are still being written, or they wait for their worker to come back.</param>
    /// <param name="lastWorkerByTrial">The worker id each trial last ran on.</param>
    public static IReadOnlyList<(TSlot Slot, TrialStarted Started)> Assign<TSlot>(
        SweepState state,
        DateTimeOffset now,
        IReadOnlyList<(TSlot Key, WorkerSlot Slot)> idle,
        Func<string, bool> held,
        IReadOnlyDictionary<string, string> lastWorkerByTrial)
        where TSlot : notnull
    {
        var free = idle.ToList();
        var assignments = new List<(TSlot, TrialStarted)>();
        foreach (var trial in state.ReadyToRun(now))
        {
            if (free.Count == 0) break;
            var id = trial.Definition.Id;
            if (held(id)) continue;
            lastWorkerByTrial.TryGetValue(id, out var lastWorker);
            int chosen = free.FindIndex(f => f.Slot.WorkerId != lastWorker);
            var (key, slot) = free[chosen < 0 ? 0 : chosen];
            free.RemoveAt(chosen < 0 ? 0 : chosen);
            assignments.Add((key, new TrialStarted(id, trial.Attempts + 1, slot.WorkerId, slot.Node, trial.CheckpointIteration, now)));
        }
        return assignments;
    }
}
