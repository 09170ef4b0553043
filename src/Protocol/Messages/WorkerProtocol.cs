using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Protocol.Messages;

/// <summary>Every message between coordinator and workers: all of them cross the wire through <see cref="Serialization.SweepSerializer"/>.</summary>
public interface ISweepMessage;

/// <summary>One worker slot: a device (a CUDA device, or a share of the CPU) that runs one trial at a time.</summary>
public sealed record WorkerSlot(string WorkerId, string Node, string Device, int Threads);

/// <summary>
/// Whether a slot's device computes correctly, from its known-answer self-test (float32 kernels
/// against float64, layer by layer) run before it registers. An unhealthy slot is never given a trial.
/// </summary>
/// <param name="Healthy">The self-test passed (or the slot runs only trials that compute nothing).</param>
/// <param name="Summary">One line: the worst error found, or the layer that failed and by how much.</param>
public sealed record SlotHealth(bool Healthy, string Summary)
{
    /// <summary>A slot that runs only the synthetic model, which computes nothing on a device.</summary>
    public static SlotHealth NotNeeded { get; } = new(true, "no self-test (it runs no LeNet)");
}

/// <summary>
/// A worker offers itself to the coordinator; <paramref name="Running"/> is the attempt it is still
/// running, if any (after a coordinator restart). <paramref name="Incarnation"/> changes when the
/// worker actor restarts, so the coordinator can tell a repeated registration from a worker that
/// lost the attempt it was running. <paramref name="Health"/> is its self-test's verdict.
/// </summary>
public sealed record RegisterWorker(WorkerSlot Slot, RunTrial? Running, string Incarnation, SlotHealth Health) : ISweepMessage;

/// <summary>
/// The worker slot is leaving (its node is shutting down, e.g. Ctrl+C or SIGTERM on `sweep worker`):
/// sent before it hands anything back, so the coordinator gives it no more trials. The attempt it
/// runs, if any, still ends with a <see cref="TrialEnded"/> (stopped with a checkpoint).
/// </summary>
/// <param name="Slot">The slot that leaves.</param>
/// <param name="Incarnation">The worker actor's incarnation, as it registered.</param>
public sealed record WorkerLeaving(WorkerSlot Slot, string Incarnation) : ISweepMessage;

/// <summary>The coordinator accepted a worker.</summary>
public sealed record WorkerRegistered(string SweepId) : ISweepMessage;

/// <summary>
/// Run one attempt of a trial. Redelivery is harmless: a worker already running this trial and
/// attempt ignores it. <paramref name="ResumeFrom"/> is the checkpoint to continue from, if any.
/// </summary>
public sealed record RunTrial(
    string SweepId,
    TrialDefinition Trial,
    int Attempt,
    ModelKind Model,
    SyntheticSpec Synthetic,
    DivergencePolicy Divergence,
    string CheckpointPath,
    string? ResumeFrom,
    CommandSpec? Command = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    PluginSpec? Plugin = null) : ISweepMessage;

/// <summary>Stop an attempt (the sweep is being interrupted); with <paramref name="Checkpoint"/> its state is saved first.</summary>
public sealed record StopTrial(string TrialId, int Attempt, bool Checkpoint) : ISweepMessage;

/// <summary>A test point of a running attempt, as its worker reports it (recorded by the coordinator as the event <see cref="Events.TrialProgress"/>).</summary>
public sealed record TestPointReported(string TrialId, int Attempt, TrialMetrics Metrics) : ISweepMessage;

/// <summary>
/// A running attempt saved its state at <paramref name="Iteration"/> to <paramref name="Path"/> (its
/// own file, one per checkpoint iteration); the coordinator records it and answers
/// <see cref="TrialCheckpointRecorded"/>.
/// </summary>
public sealed record TrialCheckpointSaved(string TrialId, int Attempt, int Iteration, string Path) : ISweepMessage;

/// <summary>
/// The coordinator's answer to <see cref="TrialCheckpointSaved"/>, sent once the journal holds the
/// checkpoint at <paramref name="Iteration"/> (TrialCheckpointed): the attempt's checkpoint files of
/// earlier iterations are superseded, and the worker deletes them. Never sent when persisting
/// fails, so a file the journal names is never deleted.
/// </summary>
/// <param name="TrialId">The trial.</param>
/// <param name="Attempt">The attempt that saved the checkpoint.</param>
/// <param name="Iteration">The iteration of the checkpoint now in the journal.</param>
public sealed record TrialCheckpointRecorded(string TrialId, int Attempt, int Iteration) : ISweepMessage;

/// <summary>
/// The checkpoint an attempt was to continue from cannot be used, so the attempt starts from
/// scratch: it is not on the worker's node (<paramref name="Reason"/> null, as messages written
/// before reasons existed read), or, with <paramref name="Reason"/>, it could not be read (damaged).
/// </summary>
/// <param name="TrialId">The trial.</param>
/// <param name="Attempt">The attempt that starts from scratch.</param>
/// <param name="Path">The checkpoint it was to continue from.</param>
/// <param name="Reason">Why it cannot be used when it is there, e.g. "damaged checkpoint (EndOfStreamException: …)"; null when it is missing.</param>
public sealed record TrialCheckpointMissing(string TrialId, int Attempt, string Path, string? Reason = null) : ISweepMessage;

/// <summary>How an attempt ended.</summary>
public enum TrialEndKind
{
    Completed,
    Diverged,
    Failed,
    OutOfMemory,

    /// <summary>Stopped on request (with a checkpoint when one was asked for).</summary>
    Stopped,

    /// <summary>
    /// Never started: the worker handed the attempt back untouched because it is leaving. The attempt
    /// does not count (the trial keeps its attempt count), and the coordinator gives that worker no more trials.
    /// </summary>
    HandedBack,
}

/// <summary>
/// An attempt ended; <paramref name="Reason"/> says why it diverged or failed. The worker keeps it,
/// and sends it again, until the coordinator answers <see cref="TrialEndRecorded"/>.
/// </summary>
public sealed record TrialEnded(string TrialId, int Attempt, TrialEndKind Kind, int Iteration, string? Reason, string? CheckpointPath) : ISweepMessage;

/// <summary>
/// The coordinator's answer to <see cref="TrialEnded"/>: the journal holds that attempt's end (it
/// was just written, or was there already), or holds a later attempt, so the end will never be
/// recorded. The worker forgets the attempt's reports, and stops sending them. Never sent before
/// the end is written, so an end is never forgotten by both sides.
/// </summary>
/// <param name="TrialId">The trial.</param>
/// <param name="Attempt">The attempt whose end this answers.</param>
public sealed record TrialEndRecorded(string TrialId, int Attempt) : ISweepMessage;
