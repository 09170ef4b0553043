using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>The coordinator's decisions about slot health, as the pure functions they are.</summary>
public sealed class SlotHealthPolicyTests
{
    private static readonly SlotHealth Sick = new(false, "self-test failed on cpu (1 thread): training conv2 output off by 2.1e-01");
    private static readonly SlotHealth Well = new(true, "self-test passed on cpu (1 thread)");

    private static (WorkerSlot, SlotHealth) Slot(string id, SlotHealth health) => (new WorkerSlot("vm/" + id, "vm", "cpu", 1), health);

    [Fact]
    public void Only_a_healthy_slot_takes_trials()
    {
        Assert.True(SlotHealthPolicy.TakesTrials(Well));
        Assert.True(SlotHealthPolicy.TakesTrials(SlotHealth.NotNeeded));
        Assert.True(SlotHealthPolicy.TakesTrials(SlotHealthPolicy.Untested));
        Assert.False(SlotHealthPolicy.TakesTrials(Sick));
    }

    [Fact]
    public void Local_mode_halts_only_when_every_expected_slot_has_registered_unhealthy()
    {
        Assert.Null(SlotHealthPolicy.WhyHalt([Slot("cpu-1", Sick)], expected: 2));
        Assert.Null(SlotHealthPolicy.WhyHalt([Slot("cpu-1", Sick), Slot("cpu-2", Well)], expected: 2));
        Assert.Null(SlotHealthPolicy.WhyHalt([], expected: 0));

        var reason = SlotHealthPolicy.WhyHalt([Slot("cpu-2", Sick), Slot("cpu-1", Sick)], expected: 2);

        Assert.Equal($"no healthy worker slot: none of the 2 takes trials, so no trial can run on this machine (vm/cpu-1: {Sick.Summary}); 'sweep selftest' shows every layer", reason);
    }

    [Fact]
    public void A_cluster_never_halts_for_unhealthy_slots()
    {
        Assert.Null(SlotHealthPolicy.WhyHalt([Slot("cpu-1", Sick), Slot("cpu-2", Sick)], expected: null));
    }
}
