using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Protocol.Events;

/// <summary>
/// Everything that happens to a sweep, persisted in order in the journal (one persistence id per
/// sweep). The sweep's state at any point is the fold of its events; status, watch and reports
/// read the same events.
/// </summary>
public interface ISweepEvent
{
    DateTimeOffset At { get; }
}

/// <summary>An event about one trial.</summary>
public interface ITrialEvent : ISweepEvent
{
    string TrialId { get; }
}

/// <summary>The sweep was expanded and accepted; every trial is queued.</summary>
public sealed record SweepStarted(string SweepId, SweepDefinition Definition, DateTimeOffset At) : ISweepEvent;

/// <summary>An attempt was handed to a worker; <paramref name="FromIteration"/> is 0 or the checkpoint it continues from.</summary>
public sealed record TrialStarted(string TrialId, int Attempt, string WorkerId, string Node, int FromIteration, DateTimeOffset At) : ITrialEvent;

/// <summary>A test point of a running attempt.</summary>
public sealed record TrialProgress(string TrialId, int Attempt, TrialMetrics Metrics, DateTimeOffset At) : ITrialEvent;

/// <summary>A running attempt saved its complete state.</summary>
public sealed record TrialCheckpointed(string TrialId, int Attempt, int Iteration, string Path, DateTimeOffset At) : ITrialEvent;

/// <summary>
/// An attempt that was to continue from <paramref name="Path"/> started from scratch (at iteration
/// 0) instead: the checkpoint was not on its worker's node (<paramref name="Reason"/> null, as in
/// events written before reasons existed) or could not be read (<paramref name="Reason"/> says why,
/// e.g. "damaged checkpoint (…)"). The trial has no checkpoint afterwards, so no later attempt tries
/// that file again.
/// </summary>
/// <param name="TrialId">The trial.</param>
/// <param name="Attempt">The attempt that started from scratch.</param>
/// <param name="Path">The checkpoint it was to continue from.</param>
/// <param name="At">When it was recorded.</param>
/// <param name="Reason">Why the checkpoint could not be used when it was there; null when it was missing.</param>
public sealed record TrialRestartedFromScratch(string TrialId, int Attempt, string Path, DateTimeOffset At, string? Reason = null) : ITrialEvent;

/// <summary>The trial ran to max-iter.</summary>
public sealed record TrialCompleted(string TrialId, int Attempt, DateTimeOffset At) : ITrialEvent;

/// <summary>The trial diverged (NaN loss, accuracy at chance, runaway loss); never retried.</summary>
public sealed record TrialDiverged(string TrialId, int Attempt, int Iteration, string Reason, DateTimeOffset At) : ITrialEvent;

/// <summary>
/// The sweep's early-stopping policy stopped the trial at a test point (a state of its own: not
/// completed, diverged or failed; never retried; it keeps its last checkpoint).
/// </summary>
/// <param name="TrialId">The trial.</param>
/// <param name="Attempt">The attempt that was running.</param>
/// <param name="Iteration">The test point's iteration (for ASHA, the rung's test point).</param>
/// <param name="Policy">The policy that decided.</param>
/// <param name="Value">The trial's figure that lost (see <c>StopDecision</c>).</param>
/// <param name="Threshold">What it had to reach.</param>
/// <param name="Reason">The decision in one line, e.g. "test-accuracy 0.951 at rung 300 is outside the top 1/3 of 7 trial(s) (cut-off 0.962)".</param>
/// <param name="At">When it was recorded.</param>
public sealed record TrialStoppedEarly(string TrialId, int Attempt, int Iteration, EarlyStoppingPolicy Policy, double Value, double Threshold, string Reason, DateTimeOffset At) : ITrialEvent;

/// <summary>An attempt failed; <paramref name="Final"/> when no attempt follows.</summary>
public sealed record TrialFailed(string TrialId, int Attempt, string Error, bool OutOfMemory, bool Final, DateTimeOffset At) : ITrialEvent;

/// <summary>
/// The trial goes back to the queue (a retry, a lost worker, an interrupted sweep, a halved batch).
/// <paramref name="NewSpec"/> replaces its spec when set; <paramref name="FromScratch"/> drops its checkpoint;
/// it is not dispatched before <paramref name="NotBefore"/>.
/// </summary>
public sealed record TrialRequeued(string TrialId, string Reason, TrialSpec? NewSpec, bool FromScratch, DateTimeOffset NotBefore, DateTimeOffset At) : ITrialEvent;

/// <summary>
/// An attempt handed to a worker came back before it started (the worker is leaving): the trial is
/// queued again and that attempt does not count, so the trial's attempts are back at
/// <paramref name="Attempt"/> − 1 and the next run is attempt <paramref name="Attempt"/> again.
/// </summary>
/// <param name="TrialId">The trial.</param>
/// <param name="Attempt">The attempt that never started.</param>
/// <param name="WorkerId">The worker slot that handed it back.</param>
/// <param name="Reason">Why, e.g. "worker node-1/cpu-0 is leaving".</param>
/// <param name="At">When it was recorded.</param>
public sealed record TrialHandedBack(string TrialId, int Attempt, string WorkerId, string Reason, DateTimeOffset At) : ITrialEvent;

/// <summary>
/// The sweep was interrupted: by Ctrl+C (running attempts were stopped and continue on resume), or
/// halted because it cannot go on, with <paramref name="Reason"/> saying why (no healthy worker slot).
/// </summary>
public sealed record SweepInterrupted(DateTimeOffset At, string? Reason = null) : ISweepEvent;

/// <summary>
/// A worker slot registered with its self-test's verdict: recorded when the sweep first sees the
/// slot and whenever its verdict or summary changes, so status and the dashboard show which slots
/// take trials and which do not, and why.
/// </summary>
public sealed record SlotChecked(WorkerSlot Slot, SlotHealth Health, DateTimeOffset At) : ISweepEvent;

/// <summary>Every trial ended (completed, diverged or failed for good).</summary>
public sealed record SweepCompleted(DateTimeOffset At) : ISweepEvent;
