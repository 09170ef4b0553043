using Sweep.GpuWorker.Workers;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Tests;

/// <summary>What a worker slot keeps of its reports until the coordinator acknowledges them: no actors.</summary>
public sealed class ReportOutboxTests
{
    private static TestPointReported Point(string trial, int attempt, int iteration) => new(trial, attempt, new TrialMetrics(iteration, 1.0, 0.5, 1.0, 0.5, 0.01, 0.1, 1));

    private static TrialCheckpointSaved Checkpoint(string trial, int attempt, int iteration) => new(trial, attempt, iteration, $"/ck/{trial}.it{iteration:D9}.ckpt");

    /// <summary>Attempt 2 of t1, resumed from a missing checkpoint: its test points at 0, 50 and 100 with checkpoints at 50 and 100 (a checkpoint follows the test point of its iteration).</summary>
    private static ReportOutbox RunningAttempt()
    {
        var outbox = new ReportOutbox();
        foreach (var report in new ISweepMessage[]
                 {
                     new TrialCheckpointMissing("t1", 2, "/ck/t1.it000000300.ckpt"),
                     Point("t1", 2, 0), Point("t1", 2, 50), Checkpoint("t1", 2, 50), Point("t1", 2, 100), Checkpoint("t1", 2, 100), Point("t1", 2, 150),
                 })
            outbox.Add(report);
        return outbox;
    }

    [Fact]
    public void An_acknowledged_checkpoint_takes_the_attempts_reports_up_to_it_and_leaves_the_later_ones_in_order()
    {
        var outbox = RunningAttempt();

        outbox.Acknowledge(new TrialCheckpointRecorded("t1", 2, 50));

        Assert.Equal(new ISweepMessage[] { Point("t1", 2, 100), Checkpoint("t1", 2, 100), Point("t1", 2, 150) }, outbox.Pending);
        Assert.False(outbox.AwaitsEnd);
        Assert.Empty(outbox.OfEndedAttempts);
    }

    [Fact]
    public void An_acknowledgement_of_another_attempt_or_one_taken_before_changes_nothing()
    {
        var outbox = RunningAttempt();
        outbox.Acknowledge(new TrialCheckpointRecorded("t1", 2, 100));
        var left = outbox.Pending.ToList();

        outbox.Acknowledge(new TrialCheckpointRecorded("t1", 2, 50)); // crossed the later one
        outbox.Acknowledge(new TrialCheckpointRecorded("t1", 1, 150)); // another attempt's
        outbox.Acknowledge(new TrialEndRecorded("t1", 1));
        outbox.Acknowledge(new TrialEndRecorded("t2", 2));

        Assert.Equal(left, outbox.Pending);
        Assert.Equal(new ISweepMessage[] { Point("t1", 2, 150) }, left);
    }

    [Fact]
    public void An_ended_attempt_is_kept_whole_until_its_end_is_acknowledged_and_the_running_one_stays()
    {
        var outbox = RunningAttempt();
        var ended = new TrialEnded("t1", 2, TrialEndKind.Completed, 200, null, null);
        outbox.Add(Point("t1", 2, 200));
        outbox.Add(ended);
        outbox.Add(Point("t2", 1, 0)); // the slot's next attempt
        outbox.Acknowledge(new TrialCheckpointRecorded("t1", 2, 100));

        Assert.True(outbox.AwaitsEnd);
        Assert.Equal(new ISweepMessage[] { Point("t1", 2, 150), Point("t1", 2, 200), ended }, outbox.OfEndedAttempts);
        Assert.Equal(new ISweepMessage[] { Point("t1", 2, 150), Point("t1", 2, 200), ended, Point("t2", 1, 0) }, outbox.Pending);

        outbox.Acknowledge(new TrialEndRecorded("t1", 2));

        Assert.False(outbox.AwaitsEnd);
        Assert.Equal(new ISweepMessage[] { Point("t2", 1, 0) }, outbox.Pending);
    }

    [Fact]
    public void Only_reports_about_an_attempt_are_kept()
    {
        var outbox = new ReportOutbox();

        var error = Assert.Throws<ArgumentException>(() => outbox.Add(new WorkerRegistered("s")));

        Assert.Contains("WorkerRegistered is not a report about an attempt", error.Message);
        Assert.Empty(outbox.Pending);
    }
}
