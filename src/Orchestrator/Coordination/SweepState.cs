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
    private readonly List<ObservedTestPoint> observed = [];

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
        Stopping = definition.EarlyStopping is { } spec ? EarlyStopping.Start(spec) : null;
    }

    /// <summary>
    /// The early-stopping policy's state, the fold of every recorded test point in journal order
    /// (null when the sweep has no policy). The coordinator decides on the same fold.
    /// </summary>
    public EarlyStopping? Stopping { get; private set; }

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
        if (snapshot.Definition.EarlyStopping is { } spec)
        {
            state.observed.AddRange(snapshot.StoppingPoints ?? []);
            state.Stopping = EarlyStopping.Replay(spec, state.observed);
        }
        return state;
    }

    public SweepSnapshot ToSnapshot() =>
        new(SweepId, Definition, Phase, trials.ToArray(), StartedAt, FinishedAt, slots.Values.ToArray(), InterruptReason, Stopping is null ? null : observed.ToArray());

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
            case TrialProgress p when Stopping is not null && EarlyStopping.PointOf(Stopping.Spec, p, this[p.TrialId].Definition.Spec) is { } point:
                observed.Add(point);
                Stopping = Stopping.Observe(point.TrialId, point.Iteration, point.Value, point.MaxIter).State;
                Update(p.TrialId, t => Next(t, p));
                break;
            case ITrialEvent e:
                if (e is TrialStarted)
                {
                    InterruptReason = null;
                    Phase = SweepPhase.Running;
                }
                Update(e.TrialId, t => Next(t, e));
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

    /// <summary>
    /// The trial <paramref name="t"/> after <paramref name="e"/>, one of its events: what each trial
    /// event means. Pure, so the coordinator can also tell what a trial will be once the events it
    /// is writing are written.
    /// </summary>
    public static TrialRecord Next(TrialRecord t, ITrialEvent e) => e switch
    {
        TrialStarted s => t with
        {
            State = TrialState.Running,
            Attempts = s.Attempt,
            WorkerId = s.WorkerId,
            Node = s.Node,
            Iteration = s.FromIteration,
            LastTestPoint = null,
        },
        TrialProgress p => t with
        {
            Iteration = p.Metrics.Iteration,
            LastTestPoint = p.Metrics.Iteration,
            // A command trial may report no test accuracy at a test point (NaN: not measured); the last measured one stands.
            FinalTestAccuracy = double.IsNaN(p.Metrics.TestAccuracy) ? t.FinalTestAccuracy : p.Metrics.TestAccuracy,
            BestTestAccuracy = double.IsNaN(p.Metrics.TestAccuracy) ? t.BestTestAccuracy : Math.Max(t.BestTestAccuracy ?? double.MinValue, p.Metrics.TestAccuracy),
            FirstTrainLoss = t.FirstTrainLoss ?? (p.Metrics.Iteration == 0 ? p.Metrics.TrainLoss : null),
            TimedSeconds = t.TimedSeconds + (p.Metrics.Iteration > t.Iteration ? p.Metrics.Seconds : 0),
            TimedIterations = t.TimedIterations + Math.Max(0, p.Metrics.Iteration - t.Iteration),
            PeakMemoryBytes = Math.Max(t.PeakMemoryBytes, p.Metrics.PeakMemoryBytes),
        },
        TrialCheckpointed c => t with { CheckpointPath = c.Path, CheckpointIteration = c.Iteration },
        TrialRestartedFromScratch => t with { CheckpointPath = null, CheckpointIteration = 0, Iteration = 0 },
        TrialCompleted c => t with { State = TrialState.Completed, FinishedAt = c.At, WorkerId = null },
        // The iteration is where it stopped (between test points, often), as `sweep train` reports it.
        TrialDiverged d => t with { State = TrialState.Diverged, Iteration = Math.Max(t.Iteration, d.Iteration), DivergedAtIteration = d.Iteration, DivergenceReason = d.Reason, FinishedAt = d.At, WorkerId = null },
        TrialStoppedEarly s => t with { State = TrialState.Stopped, StoppedAtIteration = s.Iteration, StopReason = s.Reason, FinishedAt = s.At, WorkerId = null },
        TrialFailed { Final: true } f => t with { State = TrialState.Failed, Error = f.Error, FinishedAt = f.At, WorkerId = null, Failures = t.Failures + 1 },
        TrialFailed f => t with { Error = f.Error, Failures = t.Failures + 1 },
        // The attempt never started: it does not count, and the trial is ready again at once.
        TrialHandedBack h => t.State != TrialState.Running || t.Attempts != h.Attempt ? t
            : t with { State = TrialState.Queued, Attempts = h.Attempt - 1, NotBefore = h.At, WorkerId = null, Node = null },
        TrialRequeued r => Requeued(t, r),
        _ => t,
    };

    private static TrialRecord Requeued(TrialRecord t, TrialRequeued e)
    {
        var requeued = t with { State = TrialState.Queued, NotBefore = e.NotBefore, WorkerId = null, Node = null };
        if (e.NewSpec is { } spec) requeued = requeued with { Definition = t.Definition with { Spec = spec } };
        if (e.FromScratch) requeued = requeued with { CheckpointPath = null, CheckpointIteration = 0, Iteration = 0 };
        return requeued;
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
