using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>Hand-made sweep events with known curves, timings and memory, for exact assertions on the report.</summary>
public sealed class ReportEvents
{
    public const long MiB = 1048576;
    private static readonly DateTimeOffset Epoch = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private readonly List<ISweepEvent> events = [];
    private readonly Dictionary<string, TrialDefinition> trials;

    public ReportEvents(string sweepId, params TrialDefinition[] definitions)
    {
        trials = definitions.ToDictionary(t => t.Name);
        SweepId = sweepId;
        Definition = new SweepDefinition("report-test", "hand-made", ModelKind.Synthetic, definitions, new DivergencePolicy(), new RetryPolicy(), OutOfMemoryPolicy.Fail, -1, new SyntheticSpec());
        Add(new SweepStarted(sweepId, Definition, Next()));
    }

    public string SweepId { get; }

    public SweepDefinition Definition { get; }

    public IReadOnlyList<ISweepEvent> Events => events;

    public static TrialDefinition Trial(string name, int batch, double lr, int maxIter = 1000) =>
        new($"id-{name}", name, new TrialSpec(batch, 2 * batch, lr, maxIter, 100, 1, new SolverSpec(), new DatasetSpec("unused")));

    public string Id(string name) => trials[name].Id;

    public ReportEvents Start(string name, int attempt = 1, int fromIteration = 0) =>
        Add(new TrialStarted(Id(name), attempt, "w1", "node", fromIteration, Next()));

    /// <summary>Test points every 100 iterations from <paramref name="firstIteration"/>: the given test accuracies, <paramref name="secondsPer100"/> per interval (0.1 s at iteration 0).</summary>
    public ReportEvents Points(string name, double[] testAccuracy, double secondsPer100, long memoryBytes, int attempt = 1, int firstIteration = 0)
    {
        for (int i = 0; i < testAccuracy.Length; i++)
        {
            int iteration = firstIteration + 100 * i;
            double accuracy = testAccuracy[i];
            Add(new TrialProgress(Id(name), attempt,
                new TrialMetrics(iteration, 2.3 * (1 - accuracy) + 0.05, Math.Min(1, accuracy + 0.01), 2.3 * (1 - accuracy), accuracy, 0.01 / (1 + iteration), iteration == 0 ? 0.1 : secondsPer100, memoryBytes),
                Next()));
        }
        return this;
    }

    public ReportEvents Complete(string name, int attempt = 1) => Add(new TrialCompleted(Id(name), attempt, Next()));

    /// <summary>The early-stopping policy stops the trial at <paramref name="iteration"/>.</summary>
    public ReportEvents StopEarly(string name, int iteration, double value, double threshold, int attempt = 1) =>
        Add(new TrialStoppedEarly(Id(name), attempt, iteration, EarlyStoppingPolicy.Asha, value, threshold, $"below the cut-off {threshold}", Next()));

    public ReportEvents Diverge(string name, int iteration, string reason, int attempt = 1) => Add(new TrialDiverged(Id(name), attempt, iteration, reason, Next()));

    /// <summary>An attempt fails; <paramref name="final"/>: for good, no attempt follows.</summary>
    public ReportEvents Fail(string name, string error, int attempt = 1, bool final = false) => Add(new TrialFailed(Id(name), attempt, error, false, final, Next()));

    public ReportEvents Checkpoint(string name, int iteration, int attempt = 1) => Add(new TrialCheckpointed(Id(name), attempt, iteration, $"/tmp/{name}.ckpt", Next()));

    public ReportEvents Requeue(string name, bool fromScratch = false) => Add(new TrialRequeued(Id(name), "retry", null, fromScratch, Next(), Next()));

    public ReportEvents Finish() => Add(new SweepCompleted(Next()));

    /// <summary>A whole completed trial: started, its points, completed.</summary>
    public ReportEvents Completed(string name, double[] testAccuracy, double secondsPer100, long memoryBytes) =>
        Start(name).Points(name, testAccuracy, secondsPer100, memoryBytes).Complete(name);

    public SweepState Fold()
    {
        var state = SweepState.Start((SweepStarted)events[0]);
        foreach (var e in events.Skip(1)) state.Apply(e);
        return state;
    }

    private ReportEvents Add(ISweepEvent e)
    {
        events.Add(e);
        return this;
    }

    private DateTimeOffset Next() => Epoch.AddSeconds(events.Count);

    /// <summary>
    /// A small sweep with exact answers: seconds per iteration = 0.0001 × batch + 0.001 (R² = 1), reference b64 (median batch),
    /// b32 fastest to 0.95 (iteration 400, 1.78 s), b128 resumed from a checkpoint at 200 after a failure, b64-hot diverged at 37.
    /// </summary>
    public static ReportEvents SmallSweep(string sweepId = "small")
    {
        var log = new ReportEvents(sweepId, Trial("b32", 32, 0.005, 500), Trial("b64", 64, 0.01, 500), Trial("b128", 128, 0.01, 500), Trial("b64-hot", 64, 0.1, 500));
        log.Completed("b32", [0.1, 0.7, 0.85, 0.92, 0.96, 0.97], 0.42, 56 * MiB);
        log.Completed("b64", [0.1, 0.8, 0.9, 0.95, 0.97, 0.97], 0.74, 72 * MiB);
        // b128: the first attempt reports up to 300 (a point the resumed attempt replaces), fails; the second resumes from the checkpoint at 200.
        log.Start("b128").Points("b128", [0.1, 0.85, 0.95, 0.5], 1.38, 104 * MiB).Checkpoint("b128", 200).Fail("b128", "worker lost, \"w1\"");
        log.Requeue("b128").Start("b128", attempt: 2, fromIteration: 200).Points("b128", [0.97, 0.98, 0.98], 1.38, 104 * MiB, attempt: 2, firstIteration: 300).Complete("b128", attempt: 2);
        log.Start("b64-hot").Points("b64-hot", [0.1], 0.74, 72 * MiB).Diverge("b64-hot", 37, "training loss is not finite, \"NaN\"");
        return log.Finish();
    }

    /// <summary>
    /// The paper's nine cases with curves that bear out every claim: seconds per iteration 0.0001 × batch + 0.0002,
    /// memory 84/100/126 MiB for batch 32/64/128, CASE8 diverged at 37.
    /// </summary>
    public static ReportEvents PaperSweep(string sweepId = "paper", bool finishAll = true)
    {
        var log = new ReportEvents(sweepId,
            Trial("CASE1", 64, 0.01), Trial("CASE2", 32, 0.01), Trial("CASE3", 128, 0.01), Trial("CASE4", 64, 0.04), Trial("CASE5", 64, 0.001),
            Trial("CASE6", 32, 0.02), Trial("CASE7", 64, 0.0025), Trial("CASE8", 64, 0.1), Trial("CASE9", 32, 0.005));
        log.Completed("CASE1", [0.1, 0.85, 0.92, 0.95, 0.97, 0.975, 0.978, 0.98, 0.98, 0.981, 0.981], 0.66, 100 * MiB);
        log.Completed("CASE2", [0.1, 0.80, 0.90, 0.95, 0.96, 0.965, 0.966, 0.967, 0.968, 0.968, 0.968], 0.34, 84 * MiB);
        log.Completed("CASE3", [0.1, 0.88, 0.94, 0.96, 0.98, 0.985, 0.985, 0.986, 0.986, 0.986, 0.986], 1.30, 126 * MiB);
        log.Completed("CASE4", [0.1, 0.88, 0.93, 0.955, 0.965, 0.97, 0.975, 0.978, 0.98, 0.98, 0.98], 0.66, 101 * MiB);
        log.Completed("CASE5", [0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.25, 0.28, 0.35, 0.45], 0.66, 99 * MiB);
        var case6 = new[] { 0.1, 0.84, 0.92, 0.95, 0.965, 0.96, 0.975, 0.97, 0.978, 0.975, 0.98 };
        if (finishAll) log.Completed("CASE6", case6, 0.34, 84 * MiB);
        else log.Start("CASE6").Points("CASE6", case6[..4], 0.34, 84 * MiB);
        log.Completed("CASE7", [0.1, 0.6, 0.78, 0.86, 0.9, 0.92, 0.935, 0.945, 0.95, 0.955, 0.962], 0.66, 100 * MiB);
        log.Start("CASE8").Points("CASE8", [0.1], 0.66, 90 * MiB).Diverge("CASE8", 37, "training loss is not finite");
        log.Completed("CASE9", [0.1, 0.55, 0.70, 0.80, 0.86, 0.90, 0.92, 0.94, 0.945, 0.95, 0.952], 0.34, 84 * MiB);
        return finishAll ? log.Finish() : log;
    }
}
