using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Training;
using static Sweep.Orchestrator.Tests.Coordination.OneTrialSweep;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>
/// What the coordinator does with reports a worker sends again (after a hand-over, or until
/// acknowledged), over the sweep's state as its events fold it: pure functions, no actors.
/// </summary>
public sealed class WorkerReportPolicyTests
{
    private const string Journalled = "/ck/t1.it000000050.ckpt";

    private static TrialMetrics Metrics(int iteration) => new(iteration, 1.0, 0.5, 1.0, 0.5, 0.01, 0.1, 1);

    /// <summary>Attempt 1 ran to 50 (checkpointed there) and went back to the queue; attempt 2 runs from that checkpoint.</summary>
    private static ISweepEvent[] SecondAttemptFromCheckpoint =>
    [
        new TrialStarted("t1", 1, "w1", "n1", 0, Now),
        new TrialProgress("t1", 1, Metrics(0), Now),
        new TrialProgress("t1", 1, Metrics(50), Now),
        new TrialCheckpointed("t1", 1, 50, Journalled, Now),
        new TrialRequeued("t1", "worker w1 on n1 was lost", null, false, Now, Now),
        new TrialStarted("t1", 2, "w2", "n2", 50, Now),
    ];

    private static TrialRecord Trial(params ISweepEvent[] events) => Fold(events)["t1"];

    [Fact]
    public void A_test_point_is_new_only_for_the_running_attempt_and_past_its_last_recorded_one()
    {
        var fresh = Trial(new TrialStarted("t1", 1, "w1", "n1", 0, Now));
        Assert.True(WorkerReportPolicy.IsNewTestPoint(fresh, new TestPointReported("t1", 1, Metrics(0)))); // a fresh attempt's first point is at 0

        var progressed = Trial(new TrialStarted("t1", 1, "w1", "n1", 0, Now), new TrialProgress("t1", 1, Metrics(0), Now), new TrialProgress("t1", 1, Metrics(50), Now));
        Assert.Equal(50, progressed.LastTestPoint);
        Assert.False(WorkerReportPolicy.IsNewTestPoint(progressed, new TestPointReported("t1", 1, Metrics(0))));
        Assert.False(WorkerReportPolicy.IsNewTestPoint(progressed, new TestPointReported("t1", 1, Metrics(50))));
        Assert.True(WorkerReportPolicy.IsNewTestPoint(progressed, new TestPointReported("t1", 1, Metrics(100))));
        Assert.False(WorkerReportPolicy.IsNewTestPoint(progressed, new TestPointReported("t1", 2, Metrics(100)))); // not the running attempt

        // A new attempt starts without test points, so its own points count, earlier iterations included.
        var second = Trial(SecondAttemptFromCheckpoint);
        Assert.Null(second.LastTestPoint);
        Assert.True(WorkerReportPolicy.IsNewTestPoint(second, new TestPointReported("t1", 2, Metrics(100))));
        Assert.False(WorkerReportPolicy.IsNewTestPoint(second, new TestPointReported("t1", 1, Metrics(100))));
    }

    [Fact]
    public void A_point_being_written_counts_so_the_same_point_sent_again_meanwhile_is_not_recorded_twice()
    {
        var state = Fold(new TrialStarted("t1", 1, "w1", "n1", 0, Now));
        var point = new TestPointReported("t1", 1, Metrics(0));
        Assert.True(WorkerReportPolicy.IsNewTestPoint(state["t1"], point));

        var projected = SweepState.Next(state["t1"], new TrialProgress("t1", 1, Metrics(0), Now));

        Assert.False(WorkerReportPolicy.IsNewTestPoint(projected, point));
    }

    [Fact]
    public void A_checkpoint_is_recorded_once_acknowledged_when_the_journal_holds_it_and_never_for_a_stale_attempt()
    {
        var recorded = Trial([.. SecondAttemptFromCheckpoint, new TrialCheckpointed("t1", 2, 100, "/ck/t1.it000000100.ckpt", Now)]);
        var at = (int iteration, int attempt) => new TrialCheckpointSaved("t1", attempt, iteration, $"/ck/t1.it{iteration:D9}.ckpt");

        Assert.Equal(Receipt.Record, WorkerReportPolicy.OnCheckpoint(recorded, recorded, at(150, 2)));
        Assert.Equal(Receipt.Acknowledge, WorkerReportPolicy.OnCheckpoint(recorded, recorded, at(100, 2))); // sent again: the journal has it
        Assert.Equal(Receipt.Acknowledge, WorkerReportPolicy.OnCheckpoint(recorded, recorded, at(50, 2)));
        Assert.Equal(Receipt.Ignore, WorkerReportPolicy.OnCheckpoint(recorded, recorded, at(150, 1))); // attempt 1 is over: its files are never released

        // The checkpoint at 150 is being written: sent again meanwhile, it waits for that write's acknowledgement.
        var projected = SweepState.Next(recorded, new TrialCheckpointed("t1", 2, 150, "/ck/t1.it000000150.ckpt", Now));
        Assert.Equal(Receipt.Ignore, WorkerReportPolicy.OnCheckpoint(recorded, projected, at(150, 2)));
        Assert.Equal(Receipt.Acknowledge, WorkerReportPolicy.OnCheckpoint(recorded, projected, at(100, 2)));
    }

    [Fact]
    public void A_missing_checkpoint_restarts_the_trial_from_scratch_once()
    {
        var missing = new TrialCheckpointMissing("t1", 2, Journalled);
        var state = Fold(SecondAttemptFromCheckpoint);
        Assert.True(WorkerReportPolicy.RestartsFromScratch(state["t1"], missing));
        Assert.False(WorkerReportPolicy.RestartsFromScratch(state["t1"], missing with { Attempt = 1 }));

        state.Apply(new TrialRestartedFromScratch("t1", 2, Journalled, Now));
        Assert.False(WorkerReportPolicy.RestartsFromScratch(state["t1"], missing)); // sent again: the trial has no checkpoint now

        // From scratch, the attempt writes its own checkpoint under the same name: the report sent again still changes nothing.
        state.Apply(new TrialProgress("t1", 2, Metrics(0), Now));
        state.Apply(new TrialProgress("t1", 2, Metrics(50), Now));
        state.Apply(new TrialCheckpointed("t1", 2, 50, Journalled, Now));
        Assert.Equal(Journalled, state["t1"].CheckpointPath);
        Assert.False(WorkerReportPolicy.RestartsFromScratch(state["t1"], missing));
    }

    [Fact]
    public void An_end_of_the_running_attempt_is_recorded_also_after_a_coordinator_recovered_the_trial_as_running()
    {
        // What a new coordinator recovers when the old one died before hearing the end: the attempt is still running.
        var recovered = Trial([.. SecondAttemptFromCheckpoint, new TrialProgress("t1", 2, Metrics(100), Now)]);

        Assert.Equal(Receipt.Record, WorkerReportPolicy.OnEnded(recovered, recovered, new TrialEnded("t1", 2, TrialEndKind.Completed, 200, null, null)));
        Assert.Equal(Receipt.Record, WorkerReportPolicy.OnEnded(recovered, recovered, new TrialEnded("t1", 2, TrialEndKind.Failed, 120, "boom", null)));
    }

    [Fact]
    public void An_end_the_journal_holds_or_of_a_replaced_attempt_is_only_acknowledged()
    {
        var completed = new TrialEnded("t1", 2, TrialEndKind.Completed, 200, null, null);
        var ended = Trial([.. SecondAttemptFromCheckpoint, new TrialCompleted("t1", 2, Now)]);
        Assert.Equal(Receipt.Acknowledge, WorkerReportPolicy.OnEnded(ended, ended, completed)); // the old coordinator wrote it, then died before answering

        var replaced = Trial(SecondAttemptFromCheckpoint);
        Assert.Equal(Receipt.Acknowledge, WorkerReportPolicy.OnEnded(replaced, replaced, completed with { Attempt = 1 }));

        var ahead = completed with { Attempt = 3 }; // an attempt the journal never started: nothing to record it against
        Assert.Equal(Receipt.Acknowledge, WorkerReportPolicy.OnEnded(replaced, replaced, ahead));
    }

    [Fact]
    public void An_end_whose_attempt_is_being_ended_waits_and_is_recorded_once()
    {
        var recorded = Trial(SecondAttemptFromCheckpoint);
        var completed = new TrialEnded("t1", 2, TrialEndKind.Completed, 200, null, null);
        var projected = TrialEndPolicy.Decide(Definition, recorded, completed, Now).OfType<ITrialEvent>().Aggregate(recorded, SweepState.Next);

        Assert.Equal(TrialState.Completed, projected.State);
        Assert.Equal(Receipt.Ignore, WorkerReportPolicy.OnEnded(recorded, projected, completed)); // its first copy's acknowledgement follows the write
    }

    [Fact]
    public void A_result_of_an_attempt_requeued_because_its_worker_was_taken_for_lost_is_recorded_until_another_attempt_starts()
    {
        // The orphan grace ran out before the worker came back: the trial went back to the queue, not started again yet.
        var requeued = Trial([.. SecondAttemptFromCheckpoint, new TrialRequeued("t1", "its worker did not come back after the coordinator restarted", null, false, Now, Now)]);
        var completed = new TrialEnded("t1", 2, TrialEndKind.Completed, 200, null, null);

        Assert.Equal(Receipt.Record, WorkerReportPolicy.OnEnded(requeued, requeued, completed));
        Assert.Equal(Receipt.Record, WorkerReportPolicy.OnEnded(requeued, requeued, completed with { Kind = TrialEndKind.Diverged, Iteration = 120, Reason = "loss is NaN" }));
        Assert.Equal(Receipt.Acknowledge, WorkerReportPolicy.OnEnded(requeued, requeued, completed with { Kind = TrialEndKind.Failed })); // the queue retries it anyway
        Assert.Equal(Receipt.Acknowledge, WorkerReportPolicy.OnEnded(requeued, requeued, completed with { Kind = TrialEndKind.Stopped }));

        var restarted = SweepState.Next(requeued, new TrialStarted("t1", 3, "w3", "n3", 50, Now));
        Assert.Equal(Receipt.Acknowledge, WorkerReportPolicy.OnEnded(restarted, restarted, completed));

        // Recorded, it folds to a completed trial that keeps its attempt count.
        var events = TrialEndPolicy.Decide(Definition, requeued, completed, Now);
        var after = events.OfType<ITrialEvent>().Aggregate(requeued, SweepState.Next);
        Assert.Equal((TrialState.Completed, 2), (after.State, after.Attempts));
    }
}
