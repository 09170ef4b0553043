using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Coordination;

/// <summary>What the coordinator does with worker slots' self-test verdicts: pure decisions, tested without actors.</summary>
public static class SlotHealthPolicy
{
    /// <summary>What a registration without a verdict (a worker of an older version) counts as.</summary>
    public static SlotHealth Untested { get; } = new(true, "not self-tested (a worker of an older version)");

    /// <summary>Whether a slot with this verdict may be given trials: only a healthy one.</summary>
    public static bool TakesTrials(SlotHealth health) => health.Healthy;

    /// <summary>
    /// Why the sweep cannot go on, or null. In local mode (<paramref name="expected"/> is the number
    /// of slots this process starts) the sweep halts once that many slots have registered and none
    /// is healthy; in a cluster (<paramref name="expected"/> null) it never halts for this, since
    /// healthy workers may still join (status and the dashboard show the unhealthy ones).
    /// </summary>
    /// <param name="registered">Every slot registered now, with its verdict.</param>
    /// <param name="expected">Slots that will ever register (local mode), or null.</param>
    public static string? WhyHalt(IReadOnlyCollection<(WorkerSlot Slot, SlotHealth Health)> registered, int? expected)
    {
        if (expected is not { } count || count <= 0 || registered.Count < count) return null;
        if (registered.Any(r => TakesTrials(r.Health))) return null;
        var first = registered.OrderBy(r => r.Slot.WorkerId, StringComparer.Ordinal).First();
        return $"no healthy worker slot: none of the {registered.Count} takes trials, so no trial can run on this machine " +
               $"({first.Slot.WorkerId}: {first.Health.Summary})" + (first.Health.Summary.StartsWith("self-test", StringComparison.Ordinal) ? "; 'sweep selftest' shows every layer" : "");
    }
}
