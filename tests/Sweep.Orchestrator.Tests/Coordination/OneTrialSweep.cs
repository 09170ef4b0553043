using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>The sweep the pure policy tests fold their events over: one synthetic trial, t1 (200 iterations, a test every 50, at most 2 failures).</summary>
internal static class OneTrialSweep
{
    public static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    public static readonly SweepDefinition Definition = new(
        "policy", "test", ModelKind.Synthetic,
        [new TrialDefinition("t1", "T1", new TrialSpec(64, 128, 0.01, 200, 50, 1, new SolverSpec(), new DatasetSpec("unused")))],
        new DivergencePolicy(), new RetryPolicy(MaxAttempts: 2, BackoffSeconds: 1), OutOfMemoryPolicy.Fail, -1, new SyntheticSpec());

    /// <summary>The sweep's state after <paramref name="events"/>.</summary>
    public static SweepState Fold(params ISweepEvent[] events)
    {
        var state = SweepState.Start(new SweepStarted("s", Definition, Now));
        foreach (var e in events) state.Apply(e);
        return state;
    }
}
