using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Coordination;

/// <summary>
/// A sweep's state as the fold of its events: the one place that says what each event means.
/// The coordinator applies events as it persists them; status, watch and reports replay them.
/// Keeps the queued trials in spec order so dispatch stays cheap at 10,000 trials.
/// </summary>
public sealed class SweepState
{
    private readonly Dictionary<string, int> indexById;
    private readonly TrialRecord[] trials;
    private readonly SortedSet<int> queued = [];
    private readonly Dictionary<string, SlotRecord> slots = [];

    private SweepState(string sweepId, SweepDefinition definition, IEnumerable<TrialRecord> records, SweepPhase phase, DateTimeOffset startedAt, DateTimeOffset? finishedAt)
    {
        SweepId = sweepId;
        Definition = definition;
        trials = records.ToArray();
        indexById = new Dictionary<string, int>(trials.Length);
        for (int i = 0; i < trials.Length; i++)
        {
            indexById[trials[i].Definition.Id] = i;
            if (trials[i].State == TrialState.Queued) queued.Add(i);
        }
        Phase = phase;
        StartedAt = startedAt;
        FinishedAt = finishedAt;
    }

    public string SweepId { get; }
    public SweepDefinition Definition { get; }
    public SweepPhase Phase { get; private set; }
    public DateTimeOffset StartedAt { get; }
    public DateTimeOffset? FinishedAt { get; private set; }
    public IReadOnlyList<TrialRecord> Trials => trials;
    public int FinishedCount { get; private set; }
    public bool AllFinished => FinishedCount == trials.Length;
    public bool HasFailures => trials.Any(t => t.State == TrialState.Failed);

    public TrialRecord this[string trialId] => trials[indexById[trialId]];

    public bool Contains(string trialId) => indexById.ContainsKey(trialId);

    public IEnumerable<TrialRecord> Running => trials.Where(t => t.State == TrialState.Running);

    public static SweepState Start(SweepStarted started) =>
        new(started.SweepId, started.Definition, started.Definition.Trials.Select(TrialRecord.Queued), SweepPhase.Running, started.At, null);

    /// <summary>Every worker slot the sweep has heard of, by worker id, with its self-test's verdict.</summary>
    public IReadOnlyDictionary<string, SlotRecord> Slots => slots;

    /// <summary>Why the sweep was last halted (no healthy slot), while it stays interrupted; null otherwise.</summary>
    public string? InterruptReason { get; private set; }

    public static SweepState FromSnapshot(SweepSnapshot snapshot)
    {
        var state = new SweepState(snapshot.SweepId, snapshot.Definition, snapshot.Trials, snapshot.Phase, snapshot.StartedAt, snapshot.FinishedAt);
        state.FinishedCount = state.trials.Count(t => t.IsFinished);
        foreach (var slot in snapshot.Slots ?? []) state.slots[slot.Slot.WorkerId] = slot;
        state.InterruptReason = snapshot.InterruptReason;
        return state;
    }

    public SweepSnapshot ToSnapshot() => new(SweepId, Definition, Phase, trials.ToArray(), StartedAt, FinishedAt, slots.Values.ToArray(), InterruptReason);

    /// <summary>Whether <paramref name="slot"/> registering with <paramref name="health"/> is news to the sweep (worth a <see cref="SlotChecked"/>).</summary>
    public bool IsNews(WorkerSlot slot, SlotHealth health) =>
        !slots.TryGetValue(slot.WorkerId, out var known) || known.Slot != slot || known.Health != health;

    /// <summary>Queued trials whose back-off has passed, in spec order.</summary>
    public IEnumerable<TrialRecord> ReadyToRun(DateTimeOffset now) => queued.Select(i => trials[i]).Where(t => t.NotBefore <= now);

    /// <summary>The earliest time a queued trial becomes ready, if any waits.</summary>
    public DateTimeOffset? NextReadyAt(DateTimeOffset now)
    {
        DateTimeOffset? earliest = null;
        foreach (var i in queued)
        {
            var at = trials[i].NotBefore;
            if (at > now && (earliest is null || at < earliest)) earliest = at;
        }
        return earliest;
    }

    public void Apply(ISweepEvent @event)
    {
        switch (@event)
        {
            case SlotChecked e:
                slots[e.Slot.WorkerId] = new SlotRecord(e.Slot, e.Health, e.At);
                break;
            case TrialStarted e:
                InterruptReason = null;
                Update(e.TrialId, t => t with
                {
                    State = TrialState.Running,
                    Attempts = e.Attempt,
                    WorkerId = e.WorkerId,
                    Node = e.Node,
                    Iteration = e.FromIteration,
                });
                Phase = SweepPhase.Running;
                break;
            case TrialProgress e:
                Update(e.TrialId, t => t with
                {
                    Iteration = e.Metrics.Iteration,
                    FinalTestAccuracy = e.Metrics.TestAccuracy,
                    BestTestAccuracy = Math.Max(t.BestTestAccuracy ?? double.MinValue, e.Metrics.TestAccuracy),
                    FirstTrainLoss = t.FirstTrainLoss ?? (e.Metrics.Iteration == 0 ? e.Metrics.TrainLoss : null),
                    TimedSeconds = t.TimedSeconds + (e.Metrics.Iteration > t.Iteration ? e.Metrics.Seconds : 0),
                    TimedIterations = t.TimedIterations + Math.Max(0, e.Metrics.Iteration - t.Iteration),
                    PeakMemoryBytes = Math.Max(t.PeakMemoryBytes, e.Metrics.PeakMemoryBytes),
                });
                break;
            case TrialCheckpointed e:
                Update(e.TrialId, t => t with { CheckpointPath = e.Path, CheckpointIteration = e.Iteration });
                break;
            case TrialRestartedFromScratch e:
                Update(e.TrialId, t => t with { CheckpointPath = null, CheckpointIteration = 0, Iteration = 0 });
                break;
            case TrialCompleted e:
                Update(e.TrialId, t => t with { State = TrialState.Completed, FinishedAt = e.At, WorkerId = null });
                break;
            case TrialDiverged e:
                // The iteration is where it stopped (between test points, often), as `sweep train` reports it.
                Update(e.TrialId, t => t with { State = TrialState.Diverged, Iteration = Math.Max(t.Iteration, e.Iteration), DivergedAtIteration = e.Iteration, DivergenceReason = e.Reason, FinishedAt = e.At, WorkerId = null });
                break;
            case TrialFailed { Final: true } e:
                Update(e.TrialId, t => t with { State = TrialState.Failed, Error = e.Error, FinishedAt = e.At, WorkerId = null, Failures = t.Failures + 1 });
                break;
            case TrialFailed e:
                Update(e.TrialId, t => t with { Error = e.Error, Failures = t.Failures + 1 });
                break;
            case TrialHandedBack e:
                // The attempt never started: it does not count, and the trial is ready again at once.
                Update(e.TrialId, t => t.State != TrialState.Running || t.Attempts != e.Attempt ? t
                    : t with { State = TrialState.Queued, Attempts = e.Attempt - 1, NotBefore = e.At, WorkerId = null, Node = null });
                break;
            case TrialRequeued e:
                Update(e.TrialId, t =>
                {
                    var requeued = t with { State = TrialState.Queued, NotBefore = e.NotBefore, WorkerId = null, Node = null };
                    if (e.NewSpec is { } spec) requeued = requeued with { Definition = t.Definition with { Spec = spec } };
                    if (e.FromScratch) requeued = requeued with { CheckpointPath = null, CheckpointIteration = 0, Iteration = 0 };
                    return requeued;
                });
                break;
            case SweepInterrupted e:
                Phase = SweepPhase.Interrupted;
                InterruptReason = e.Reason;
                break;
            case SweepCompleted e:
                Phase = SweepPhase.Completed;
                FinishedAt = e.At;
                break;
            case SweepStarted:
                throw new InvalidOperationException($"sweep {SweepId} was already started");
        }
    }

    private void Update(string trialId, Func<TrialRecord, TrialRecord> change)
    {
        int index = indexById[trialId];
        var before = trials[index];
        var after = change(before);
        trials[index] = after;
        if (after.State == TrialState.Queued) queued.Add(index);
        else queued.Remove(index);
        if (before.IsFinished != after.IsFinished) FinishedCount += after.IsFinished ? 1 : -1;
    }
}
