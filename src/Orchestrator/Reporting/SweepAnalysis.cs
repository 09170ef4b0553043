using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Reporting;

/// <summary>A diverged trial: where and why.</summary>
public sealed record DivergenceFinding(string Trial, int? Iteration, string? Reason);

/// <summary>
/// A trial whose batch differs from the reference's by the ratio r = batch / batch_ref: the exponent k
/// its learning rate implies (lr = lr_ref × r^k), and how closely its test-accuracy curve tracks the
/// reference's: the mean absolute difference per iteration (same iteration numbers) and per epoch
/// (the trial's iteration i against the reference's i × r, where both have seen as many images).
/// Iteration 0 is left out: there no rate has acted yet.
/// </summary>
/// <param name="State">The trial's state: only a completed trial counts towards the best exponent.</param>
public sealed record CouplingFinding(
    string Trial,
    int BatchSize,
    double BaseLr,
    double Ratio,
    double Exponent,
    TrialState State,
    double? PerIterationMad,
    int PerIterationPoints,
    double? PerEpochMad,
    int PerEpochPoints)
{
    /// <summary>Whether the trial diverged.</summary>
    public bool Diverged => State == TrialState.Diverged;
}

/// <summary>The completed trials with one coupling exponent k, and how closely they track the reference on average.</summary>
public sealed record CouplingSummary(double Exponent, IReadOnlyList<string> Trials, double? MeanPerIterationMad, double? MeanPerEpochMad);

/// <summary>
/// Everything `sweep report` computes from a sweep's events: per-trial curves and times, the reference
/// trial, the time-per-iteration fit, divergences, the batch/learning-rate coupling, the recommended
/// max-iter, the best trial, and for the paper preset the verdict on each of the paper's claims.
/// Only completed trials can be best, by any criterion (<see cref="TrialAnalysis.CanBeBest"/>): a trial
/// that diverged, failed or has not finished is listed apart (<see cref="NotEligible"/>), whatever its numbers.
/// </summary>
/// <param name="BestByTimeToTarget">The completed trial that reached the target test accuracy in the fewest wall-clock seconds (then iterations).</param>
/// <param name="BestByFinalAccuracy">The completed trial with the highest final test accuracy (the first in spec order on a tie).</param>
public sealed record SweepAnalysis(
    string SweepId,
    string Name,
    SweepPhase Phase,
    string Source,
    DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt,
    double TargetAccuracy,
    bool IsPaperPreset,
    IReadOnlyList<TrialAnalysis> Trials,
    TrialAnalysis? Reference,
    string ReferenceRule,
    LinearFit? SecondsPerIterationFit,
    IReadOnlyList<DivergenceFinding> Divergences,
    IReadOnlyList<CouplingFinding> Couplings,
    IReadOnlyList<CouplingSummary> CouplingByExponent,
    CouplingSummary? BestPerIteration,
    CouplingSummary? BestPerEpoch,
    TrialAnalysis? BestByTimeToTarget,
    TrialAnalysis? BestByFinalAccuracy,
    IReadOnlyList<PaperClaim> PaperClaims,
    IReadOnlyList<SlotRecord> Slots)
{
    /// <summary>The target test accuracy of `sweep report` unless --target-accuracy says otherwise.</summary>
    public const double DefaultTargetAccuracy = 0.95;

    /// <summary>The names of the paper's nine cases; a sweep with all of them is the paper preset.</summary>
    public static readonly IReadOnlyList<string> PaperCases = Enumerable.Range(1, 9).Select(i => $"CASE{i}").ToList();

    /// <summary>The trial named <paramref name="name"/>, or null.</summary>
    public TrialAnalysis? this[string name] => Trials.FirstOrDefault(t => t.Name == name);

    /// <summary>The trials that cannot be named best by any criterion (they diverged, failed or have not finished), in spec order.</summary>
    public IReadOnlyList<TrialAnalysis> NotEligible => Trials.Where(t => !t.CanBeBest).ToList();

    /// <summary>
    /// The trials that cannot be best, each with why, such as "blows-up (diverged at 20)", at most
    /// <paramref name="max"/> of them and then how many more; null when every trial can be.
    /// </summary>
    public string? NotEligibleList(int max)
    {
        var others = NotEligible;
        return others.Count == 0 ? null : Listed(others.Select(t => $"{t.Name} ({t.WhyNotEligible})").ToList(), max);
    }

    /// <summary>
    /// The first <paramref name="max"/> of <paramref name="items"/>, comma-separated, then "and N
    /// more" when there are more: the one way a finding names trials, so that no line grows with the sweep.
    /// </summary>
    public static string Listed(IReadOnlyList<string> items, int max, string separator = ", ") =>
        items.Count > max ? $"{string.Join(separator, items.Take(max))} and {items.Count - max} more" : string.Join(separator, items);

    /// <summary>The trials stopped by the early-stopping policy, in spec order.</summary>
    public IReadOnlyList<TrialAnalysis> Stopped => Trials.Where(t => t.Record.State == TrialState.Stopped).ToList();

    /// <summary>
    /// What the sweep trained against what every trial to max-iter would have: iterations done and
    /// the full count; seconds spent and that plus each stopped trial's remaining iterations at its
    /// own seconds per iteration (null when no stopped trial was timed).
    /// </summary>
    public (long Iterations, long FullIterations, double Seconds, double? FullSeconds) Compute()
    {
        long done = Trials.Sum(t => (long)t.Status.Iteration);
        long full = Trials.Sum(t => (long)Math.Max(t.MaxIter, t.Status.Iteration));
        double seconds = Trials.Sum(t => t.Record.TimedSeconds);
        var stopped = Stopped;
        double? remaining = stopped.All(t => t.Record.SecondsPer100Iterations is not null)
            ? stopped.Sum(t => (t.MaxIter - t.Status.Iteration) * t.Record.SecondsPer100Iterations!.Value / 100)
            : null;
        return (done, full, seconds, seconds + remaining);
    }

    /// <summary>Analyses a sweep from its folded state and its events in persisted order.</summary>
    public static SweepAnalysis Compute(SweepState state, IReadOnlyList<ISweepEvent> events, double targetAccuracy = DefaultTargetAccuracy)
    {
        var curves = TrialCurves.FromEvents(events);
        var statuses = StatusView.Status(state).Trials;
        var trials = state.Trials
            .Select((record, i) => TrialAnalysis.Create(record, statuses[i], curves.GetValueOrDefault(record.Definition.Id) ?? [], targetAccuracy))
            .ToList();
        bool paper = PaperCases.All(name => trials.Any(t => t.Name == name));

        var (reference, referenceRule) = ChooseReference(trials, paper);
        if (reference is { Record.PeakMemoryBytes: > 0 } withMemory)
        {
            for (int i = 0; i < trials.Count; i++)
            {
                if (trials[i].Record.PeakMemoryBytes > 0)
                    trials[i] = trials[i] with { MemoryPercentOfReference = 100.0 * trials[i].Record.PeakMemoryBytes / withMemory.Record.PeakMemoryBytes };
            }
            reference = trials.First(t => t.Id == withMemory.Id);
        }

        var fit = LinearFit.Of(trials
            .Where(t => t.State == TrialState.Completed && t.SecondsPerIteration is not null)
            .Select(t => ((double)t.BatchSize, t.SecondsPerIteration!.Value))
            .ToList());

        var divergences = trials
            .Where(t => t.Diverged)
            .Select(t => new DivergenceFinding(t.Name, t.Record.DivergedAtIteration, t.Record.DivergenceReason))
            .ToList();

        var couplings = reference is null ? [] : FindCouplings(trials, reference);
        var byExponent = couplings
            .Where(c => c.State == TrialState.Completed && (c.PerIterationMad is not null || c.PerEpochMad is not null))
            .GroupBy(c => Math.Round(c.Exponent, 3) + 0.0)
            .OrderBy(g => g.Key)
            .Select(g => new CouplingSummary(
                g.Key,
                g.Select(c => c.Trial).ToList(),
                Mean(g.Select(c => c.PerIterationMad)),
                Mean(g.Select(c => c.PerEpochMad))))
            .ToList();
        var bestPerIteration = byExponent.Where(s => s.MeanPerIterationMad is not null).OrderBy(s => s.MeanPerIterationMad).FirstOrDefault();
        var bestPerEpoch = byExponent.Where(s => s.MeanPerEpochMad is not null).OrderBy(s => s.MeanPerEpochMad).FirstOrDefault();

        // Only a completed trial can be best: one that reached the target and then diverged is no recommendation.
        var best = trials
            .Where(t => t.CanBeBest && t.TimeToTarget is not null)
            .OrderBy(t => t.TimeToTarget!.Seconds)
            .ThenBy(t => t.TimeToTarget!.Iterations)
            .FirstOrDefault();
        var bestFinal = trials
            .Where(t => t.CanBeBest && t.FinalTestAccuracy is not null)
            .OrderByDescending(t => t.FinalTestAccuracy!.Value)
            .FirstOrDefault();

        var analysis = new SweepAnalysis(
            state.SweepId,
            state.Definition.Name,
            state.Phase,
            state.Definition.Source,
            state.StartedAt,
            state.FinishedAt,
            targetAccuracy,
            paper,
            trials,
            reference,
            referenceRule,
            fit,
            divergences,
            couplings,
            byExponent,
            bestPerIteration,
            bestPerEpoch,
            best,
            bestFinal,
            [],
            state.Slots.Values.OrderBy(s => s.Slot.WorkerId, StringComparer.Ordinal).ToList());
        return paper ? analysis with { PaperClaims = PaperClaimChecks.Evaluate(analysis) } : analysis;
    }

    /// <summary>
    /// CASE1 for the paper preset; otherwise, among the completed trials (all trials when none completed),
    /// the one with the median batch size and, among those, the median base lr (lower medians of the distinct values; then spec order).
    /// </summary>
    private static (TrialAnalysis? Reference, string Rule) ChooseReference(IReadOnlyList<TrialAnalysis> trials, bool paper)
    {
        if (paper) return (trials.First(t => t.Name == "CASE1"), "the paper's reference case");
        const string rule = "the trial with the median batch size (then the median base lr) among the completed trials";
        var candidates = trials.Where(t => t.State == TrialState.Completed).ToList();
        if (candidates.Count == 0) candidates = trials.ToList();
        if (candidates.Count == 0) return (null, rule);
        var batches = candidates.Select(t => t.BatchSize).Distinct().Order().ToList();
        int batch = batches[(batches.Count - 1) / 2];
        var sameBatch = candidates.Where(t => t.BatchSize == batch).ToList();
        var rates = sameBatch.Select(t => t.BaseLr).Distinct().Order().ToList();
        double rate = rates[(rates.Count - 1) / 2];
        return (sameBatch.First(t => t.BaseLr == rate), rule);
    }

    /// <summary>
    /// The smallest batch ratio r = batch / reference batch (or 1/r) at which a trial's rate implies a
    /// coupling exponent worth comparing: √2, half a doubling. Nearer, k = log(lr ratio) / log r is
    /// ill-conditioned (a rate 10% off at r = 1.1 reads as k = 1) and any rate near the reference's
    /// tracks it, so a random search's near-reference draws would name meaningless exponents.
    /// </summary>
    private static readonly double MinCouplingRatio = Math.Sqrt(2);

    /// <summary>Whether a trial with batch ratio <paramref name="ratio"/> to the reference is too near it to imply an exponent (see <see cref="MinCouplingRatio"/>).</summary>
    private static bool TooNearForCoupling(double ratio) => ratio < MinCouplingRatio && 1 / ratio < MinCouplingRatio;

    private static List<CouplingFinding> FindCouplings(IReadOnlyList<TrialAnalysis> trials, TrialAnalysis reference)
    {
        var findings = new List<CouplingFinding>();
        foreach (var trial in trials)
        {
            double ratio = (double)trial.BatchSize / reference.BatchSize;
            if (TooNearForCoupling(ratio)) continue;
            // Rounded so that float noise neither shows (k = 1.0000000000000002) nor gives -0.
            double exponent = Math.Round(Math.Log(trial.BaseLr / reference.BaseLr) / Math.Log(ratio), 9) + 0.0;
            var perIteration = trial.TestPoints
                .Where(p => p.Iteration > 0)
                .Select(p => (Trial: p.TestAccuracy, Reference: reference.TestAccuracyAt(p.Iteration)))
                .Where(pair => pair.Reference is not null)
                .Select(pair => Math.Abs(pair.Trial - pair.Reference!.Value))
                .ToList();
            var perEpoch = trial.TestPoints
                .Where(p => p.Iteration > 0)
                .Select(p => (Trial: p.TestAccuracy, Reference: reference.InterpolatedTestAccuracy(p.Iteration * ratio)))
                .Where(pair => pair.Reference is not null)
                .Select(pair => Math.Abs(pair.Trial - pair.Reference!.Value))
                .ToList();
            findings.Add(new CouplingFinding(
                trial.Name,
                trial.BatchSize,
                trial.BaseLr,
                ratio,
                exponent,
                trial.State,
                perIteration.Count > 0 ? perIteration.Average() : null,
                perIteration.Count,
                perEpoch.Count > 0 ? perEpoch.Average() : null,
                perEpoch.Count));
        }
        return findings;
    }

    private static double? Mean(IEnumerable<double?> values)
    {
        var present = values.Where(v => v is not null).Select(v => v!.Value).ToList();
        return present.Count > 0 ? present.Average() : null;
    }
}
