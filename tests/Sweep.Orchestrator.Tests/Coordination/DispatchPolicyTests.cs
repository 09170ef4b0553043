using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>Which ready trial goes to which idle slot (<see cref="DispatchPolicy"/>), without actors.</summary>
public sealed class DispatchPolicyTests
{
    private static readonly DateTimeOffset Now = OneTrialSweep.Now;

    private static readonly WorkerSlot A = new("node/cpu-1", "node", "cpu", 1);
    private static readonly WorkerSlot B = new("node/cpu-2", "node", "cpu", 1);

    /// <summary>Three trials, t1 t2 t3, over <see cref="OneTrialSweep"/>'s settings, after <paramref name="events"/>.</summary>
    private static SweepState Three(params ISweepEvent[] events)
    {
        var one = OneTrialSweep.Definition.Trials[0];
        var definition = OneTrialSweep.Definition with
        {
            Trials = [one, one with { Id = "t2", Name = "T2" }, one with { Id = "t3", Name = "T3" }],
        };
        var state = SweepState.Start(new SweepStarted("s", definition, Now));
        foreach (var e in events) state.Apply(e);
        return state;
    }

    private static IReadOnlyList<(string Slot, TrialStarted Started)> Assign(SweepState state, IReadOnlyList<WorkerSlot> idle, Func<string, bool>? held = null, Dictionary<string, string>? last = null) =>
        DispatchPolicy.Assign(state, Now, idle.Select(s => (s.WorkerId, s)).ToList(), held ?? (_ => false), last ?? []);

    [Fact]
    public void Ready_trials_go_in_queue_order_to_as_many_idle_slots_as_there_are_each_as_its_first_attempt_from_iteration_0()
    {
        var starts = Assign(Three(), [A, B]);

        Assert.Equal([("node/cpu-1", "t1"), ("node/cpu-2", "t2")], starts.Select(s => (s.Slot, s.Started.TrialId)));
        Assert.All(starts, s => Assert.Equal((1, 0, Now, "node"), (s.Started.Attempt, s.Started.FromIteration, s.Started.At, s.Started.Node)));
        Assert.Equal(starts.Select(s => s.Slot), starts.Select(s => s.Started.WorkerId));
        Assert.Empty(Assign(Three(), []));
    }

    [Fact]
    public void A_retried_trial_continues_from_its_checkpoint_as_its_next_attempt_on_another_slot_when_one_is_idle()
    {
        var failed = Three(
            new TrialStarted("t1", 1, A.WorkerId, A.Node, 0, Now),
            new TrialCheckpointed("t1", 1, 150, "/ckpt/t1", Now),
            new TrialFailed("t1", 1, "boom", false, false, Now),
            new TrialRequeued("t1", "retry", null, false, Now, Now));
        var lastOn = new Dictionary<string, string> { ["t1"] = A.WorkerId };

        var both = Assign(failed, [A, B], last: lastOn).Single(s => s.Started.TrialId == "t1");
        var onlyA = Assign(failed, [A], last: lastOn).Single();

        Assert.Equal((B.WorkerId, 2, 150), (both.Slot, both.Started.Attempt, both.Started.FromIteration));
        // With only the slot it failed on idle, it runs there rather than wait.
        Assert.Equal((A.WorkerId, "t1", 2), (onlyA.Slot, onlyA.Started.TrialId, onlyA.Started.Attempt));
    }

    [Fact]
    public void A_held_trial_and_one_in_back_off_are_passed_over_and_the_next_ready_one_takes_the_slot()
    {
        var backingOff = Three(
            new TrialStarted("t2", 1, A.WorkerId, A.Node, 0, Now),
            new TrialFailed("t2", 1, "boom", false, false, Now),
            new TrialRequeued("t2", "retry", null, false, Now.AddSeconds(5), Now));

        var starts = Assign(backingOff, [A, B], held: id => id == "t1");

        Assert.Equal(["t3"], starts.Select(s => s.Started.TrialId));
        // Once the back-off is over, t2 is ready again.
        var later = DispatchPolicy.Assign(backingOff, Now.AddSeconds(5), [(A.WorkerId, A)], id => id != "t2", new Dictionary<string, string>());
        Assert.Equal([("t2", 2)], later.Select(s => (s.Started.TrialId, s.Started.Attempt)));
    }
}
