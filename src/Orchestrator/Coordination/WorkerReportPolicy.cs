using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Coordination;

/// <summary>What the coordinator does with a report whose acknowledgement the worker waits for.</summary>
public enum Receipt
{
    /// <summary>Record it (then acknowledge it, once written, where the report has an acknowledgement).</summary>
    Record,

    /// <summary>The journal holds it already, or never will (a later attempt runs): acknowledge it, record nothing.</summary>
    Acknowledge,

    /// <summary>Neither, for now: the worker sends it again (the same report is being written, or a stale attempt's checkpoint is never recorded).</summary>
    Ignore,
}

/// <summary>
/// What the coordinator does with a worker's report about an attempt when the same report may come
/// more than once: a worker keeps each report until the coordinator acknowledges it (a checkpoint
/// takes the attempt's earlier reports with it, an end all of them) and sends what it keeps again
/// to each coordinator it registers with, so the reports sent to a coordinator that died on the
/// way (its node killed) reach its successor, and an attempt that ended meanwhile is not trained
/// again. Pure decisions over the trial as the journal holds it (<c>recorded</c>) and as it will be
/// once the events being written are (<c>projected</c>, <see cref="SweepState.Next"/>), tested without actors.
/// </summary>
public static class WorkerReportPolicy
{
    /// <summary>Whether <paramref name="trial"/> is running <paramref name="attempt"/>: reports of any other attempt are stale.</summary>
    public static bool Runs(TrialRecord trial, int attempt) => trial.State == TrialState.Running && trial.Attempts == attempt;

    /// <summary>
    /// A test point is recorded when it is the running attempt's and later than every test point of
    /// that attempt recorded or being written (an attempt's test points come in iteration order);
    /// one it has already is the same point sent again.
    /// </summary>
    /// <param name="projected">The trial once the events being written are.</param>
    /// <param name="progress">The test point.</param>
    public static bool IsNewTestPoint(TrialRecord projected, TestPointReported progress) =>
        Runs(projected, progress.Attempt) && progress.Metrics.Iteration > (projected.LastTestPoint ?? -1);

    /// <summary>
    /// A checkpoint later than the trial's is recorded; one the journal already holds (or holds a
    /// later one than) is only acknowledged, so the worker deletes its older files; one being
    /// written waits for that write's acknowledgement. A stale attempt's checkpoint is never
    /// acknowledged: its files may be older than the one the journal names, which must never be deleted.
    /// </summary>
    /// <param name="recorded">The trial as the journal holds it.</param>
    /// <param name="projected">The trial once the events being written are.</param>
    /// <param name="saved">The checkpoint.</param>
    public static Receipt OnCheckpoint(TrialRecord recorded, TrialRecord projected, TrialCheckpointSaved saved) =>
        !Runs(projected, saved.Attempt) ? Receipt.Ignore
        : saved.Iteration > projected.CheckpointIteration ? Receipt.Record
        : Runs(recorded, saved.Attempt) && saved.Iteration <= recorded.CheckpointIteration ? Receipt.Acknowledge
        : Receipt.Ignore;

    /// <summary>
    /// A missing (or damaged) checkpoint restarts the trial from scratch when it is still the
    /// trial's checkpoint and the attempt has no test point yet (a worker reports it before
    /// training); sent again after that, it changes nothing.
    /// </summary>
    /// <param name="projected">The trial once the events being written are.</param>
    /// <param name="missing">The report.</param>
    public static bool RestartsFromScratch(TrialRecord projected, TrialCheckpointMissing missing) =>
        Runs(projected, missing.Attempt) && projected.LastTestPoint is null && projected.CheckpointPath == missing.Path;

    /// <summary>
    /// An attempt's end is recorded when the attempt is the one running; also a result (completed,
    /// diverged) of the attempt that ran last when the trial went back to the queue because its
    /// worker was taken for lost (it did not re-register in time after a hand-over) and has not
    /// started again, since the result is real. An end of an attempt whose end or re-queueing is
    /// being written waits for that write (the worker sends it again). Anything else is
    /// acknowledged and not recorded: the journal holds that attempt's end already, or a later
    /// attempt (a trial is never recorded as ended twice).
    /// </summary>
    /// <param name="recorded">The trial as the journal holds it.</param>
    /// <param name="projected">The trial once the events being written are.</param>
    /// <param name="ended">The end, as its worker reported it.</param>
    public static Receipt OnEnded(TrialRecord recorded, TrialRecord projected, TrialEnded ended) =>
        Runs(projected, ended.Attempt) ? Receipt.Record
        : projected is { State: TrialState.Queued } && projected.Attempts == ended.Attempt && ended.Kind is TrialEndKind.Completed or TrialEndKind.Diverged ? Receipt.Record
        : Runs(recorded, ended.Attempt) ? Receipt.Ignore
        : Receipt.Acknowledge;
}
