using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;

namespace Sweep.Protocol.Events;

/// <summary>Where a trial stands.</summary>
public enum TrialState
{
    Queued,
    Running,
    Completed,
    Diverged,
    Failed,

    /// <summary>Stopped by the sweep's early-stopping policy (<see cref="TrialStoppedEarly"/>): finished, not completed.</summary>
    Stopped,
}

/// <summary>Where a sweep stands.</summary>
public enum SweepPhase
{
    Running,
    Interrupted,
    Completed,
}

/// <summary>
/// One trial's state, folded from its events: what `sweep status` shows, and what a snapshot keeps.
/// <paramref name="Definition"/> holds the trial's current spec (a halved batch changes it).
/// <paramref name="Attempts"/> counts the runs that started (an attempt handed back before it started
/// does not count); <paramref name="Failures"/> the attempts that failed (out of memory included),
/// which is what <c>retry.max-attempts</c> limits: a run stopped because its worker left or was lost,
/// or because the sweep was interrupted, uses up no retry. Snapshots written before failures were
/// counted read 0. <paramref name="LastTestPoint"/> is the iteration of the last test point recorded
/// for the attempt that runs (or ran last), null before its first: a test point a worker sends again
/// is recognised by it (snapshots written before it existed read null). <paramref name="StoppedAtIteration"/>
/// and <paramref name="StopReason"/> say where and why an early-stopping policy stopped the trial.
/// </summary>
public sealed record TrialRecord(
    TrialDefinition Definition,
    TrialState State,
    int Attempts,
    int Iteration,
    double? FinalTestAccuracy,
    double? BestTestAccuracy,
    double? FirstTrainLoss,
    double TimedSeconds,
    int TimedIterations,
    long PeakMemoryBytes,
    int? DivergedAtIteration,
    string? DivergenceReason,
    string? Error,
    DateTimeOffset? FinishedAt,
    string? WorkerId,
    string? Node,
    string? CheckpointPath,
    int CheckpointIteration,
    DateTimeOffset NotBefore,
    int Failures = 0,
    int? LastTestPoint = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    int? StoppedAtIteration = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    string? StopReason = null)
{
    public static TrialRecord Queued(TrialDefinition definition) =>
        new(definition, TrialState.Queued, 0, 0, null, null, null, 0, 0, 0, null, null, null, null, null, null, null, 0, DateTimeOffset.MinValue);

    public bool IsFinished => State is TrialState.Completed or TrialState.Diverged or TrialState.Failed or TrialState.Stopped;

    /// <summary>Mean wall-clock seconds per 100 training iterations (tests included), over what was timed.</summary>
    public double? SecondsPer100Iterations => TimedIterations > 0 ? 100.0 * TimedSeconds / TimedIterations : null;
}

/// <summary>A worker slot as the sweep last heard of it: its self-test's verdict and when it registered.</summary>
public sealed record SlotRecord(WorkerSlot Slot, SlotHealth Health, DateTimeOffset CheckedAt);

/// <summary>
/// A sweep's whole state at one sequence number, so recovery need not replay every event.
/// <paramref name="Slots"/> and <paramref name="InterruptReason"/> are absent from snapshots written before slots had self-tests.
/// </summary>
public sealed record SweepSnapshot(
    string SweepId,
    SweepDefinition Definition,
    SweepPhase Phase,
    IReadOnlyList<TrialRecord> Trials,
    DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt,
    IReadOnlyList<SlotRecord>? Slots = null,
    string? InterruptReason = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    IReadOnlyList<ObservedTestPoint>? StoppingPoints = null);

/// <summary>
/// A test point as the early-stopping policy saw it, in journal order: a snapshot keeps them so that
/// the policy's state is rebuilt by the same fold (absent without early stopping).
/// </summary>
/// <param name="TrialId">The trial.</param>
/// <param name="Iteration">The test point's progress in the policy's resource: its iteration, or the images seen by then (iteration × batch size).</param>
/// <param name="Value">The policy's metric there.</param>
/// <param name="MaxIter">The trial's max-iter then, in the same unit.</param>
public sealed record ObservedTestPoint(string TrialId, int Iteration, double Value, int MaxIter);
