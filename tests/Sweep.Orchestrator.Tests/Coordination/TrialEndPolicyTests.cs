using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using static Sweep.Orchestrator.Tests.Coordination.OneTrialSweep;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>What the coordinator records when an attempt ends, and how the state folds it: pure functions, no actors.</summary>
public sealed class TrialEndPolicyTests
{
    /// <summary>The sweep with its one trial started <paramref name="times"/> times (attempt <paramref name="times"/> running on w1).</summary>
    private static SweepState Started(int times)
    {
        var state = Fold();
        for (int attempt = 1; attempt <= times; attempt++)
        {
            if (attempt > 1) state.Apply(new TrialRequeued("t1", "worker w1 left at iteration 40", null, false, Now, Now));
            state.Apply(new TrialStarted("t1", attempt, "w1", "n1", 0, Now));
        }
        return state;
    }

    [Fact]
    public void An_attempt_handed_back_before_it_started_does_not_count_and_is_ready_at_once()
    {
        var state = Started(times: 2);

        var events = TrialEndPolicy.Decide(Definition, state["t1"], new TrialEnded("t1", 2, TrialEndKind.HandedBack, 0, "worker w1 is leaving", null), Now);
        foreach (var e in events) state.Apply(e);

        var handedBack = Assert.IsType<TrialHandedBack>(Assert.Single(events));
        Assert.Equal(("t1", 2, "w1", "worker w1 is leaving"), (handedBack.TrialId, handedBack.Attempt, handedBack.WorkerId, handedBack.Reason));
        Assert.Equal((TrialState.Queued, 1, 0, (string?)null), (state["t1"].State, state["t1"].Attempts, state["t1"].Failures, state["t1"].WorkerId));
        Assert.Single(state.ReadyToRun(Now));
    }

    [Fact]
    public void A_hand_back_of_an_attempt_that_is_not_the_running_one_changes_nothing()
    {
        var state = Started(times: 2);

        state.Apply(new TrialHandedBack("t1", 1, "w1", "worker w1 is leaving", Now));

        Assert.Equal((TrialState.Running, 2), (state["t1"].State, state["t1"].Attempts));
    }

    [Fact]
    public void Runs_stopped_because_their_worker_left_use_up_no_retry()
    {
        // Two runs stopped by leaving workers, then the first failure: with max-attempts 2 it is retried.
        var state = Started(times: 3);

        var first = TrialEndPolicy.Decide(Definition, state["t1"], new TrialEnded("t1", 3, TrialEndKind.Failed, 10, "boom", null), Now);
        foreach (var e in first) state.Apply(e);

        Assert.Collection(first,
            e => Assert.False(Assert.IsType<TrialFailed>(e).Final),
            e => Assert.Equal("retry 2 of 2 after: boom", Assert.IsType<TrialRequeued>(e).Reason));
        Assert.Equal((TrialState.Queued, 3, 1), (state["t1"].State, state["t1"].Attempts, state["t1"].Failures));
        Assert.Equal(Now + TimeSpan.FromSeconds(1), state["t1"].NotBefore);

        state.Apply(new TrialStarted("t1", 4, "w2", "n2", 0, Now));
        var second = TrialEndPolicy.Decide(Definition, state["t1"], new TrialEnded("t1", 4, TrialEndKind.Failed, 10, "boom again", null), Now);
        foreach (var e in second) state.Apply(e);

        Assert.True(Assert.IsType<TrialFailed>(Assert.Single(second)).Final);
        Assert.Equal((TrialState.Failed, 4, 2, "boom again"), (state["t1"].State, state["t1"].Attempts, state["t1"].Failures, state["t1"].Error));
    }

    [Fact]
    public void A_stopped_run_goes_back_to_the_queue_from_its_checkpoint()
    {
        var state = Started(times: 1);

        var events = TrialEndPolicy.Decide(Definition, state["t1"], new TrialEnded("t1", 1, TrialEndKind.Stopped, 40, "worker w1 left", "/ck/t1.it000000040.ckpt"), Now);

        var requeued = Assert.IsType<TrialRequeued>(Assert.Single(events));
        Assert.Equal(("worker w1 left at iteration 40", false), (requeued.Reason, requeued.FromScratch));
    }
}
