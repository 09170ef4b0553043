using System.Globalization;
using Sweep.Protocol.Events;

namespace Sweep.Orchestrator.Reporting;

/// <summary>What a run says about one of the paper's claims.</summary>
public enum ClaimVerdict
{
    Reproduced,
    NotReproduced,
    NotCheckable,
}

/// <summary>One of the paper's claims (../shared/reference/paper.md, "Claims" 1–9), the rule it was checked by, the verdict and the numbers behind it.</summary>
public sealed record PaperClaim(int Number, string Claim, ClaimVerdict Verdict, string Rule, string Evidence);

/// <summary>
/// Checks the paper's claims 1–9 against a run of the paper preset (trials CASE1..CASE9). Each claim is
/// split into parts; a claim is reproduced when every part holds, not reproduced when any part fails,
/// and not checkable when no part fails but some could not be evaluated (a trial still running or
/// failed, too few test points, a run too short). "About 0.95" is the paper's 0.95 whatever
/// --target-accuracy says, with 0.01 of slack where the paper says "about".
/// </summary>
public static class PaperClaimChecks
{
    /// <summary>The accuracy the paper's claims speak of.</summary>
    public const double PaperTarget = 0.95;

    private const double AboutTarget = PaperTarget - 0.01;

    /// <summary>Below this highest test accuracy a trial has not learned (claims 1 and 9).</summary>
    private const double NoLearning = 0.1;

    /// <summary>
    /// Each claim's rule is written from the same values its check uses (every number in a rule is
    /// interpolated from a constant or from the run, such as 20% of this run's max-iter), so the rule
    /// always says what was checked.
    /// </summary>
    public static IReadOnlyList<PaperClaim> Evaluate(SweepAnalysis analysis) =>
    [
        Claim1(analysis),
        Claim2(analysis),
        Claim3(analysis),
        Claim4(analysis),
        Claim5(analysis),
        Claim6(analysis),
        Claim7(analysis),
        Claim8(analysis),
        Claim9(analysis),
    ];

    /// <summary>One part of a claim: true (holds), false (fails) or null (could not be evaluated), and its numbers.</summary>
    private sealed record Part(bool? Holds, string Evidence);

    private static PaperClaim Verdict(int number, string claim, string rule, params Part[] parts)
    {
        var verdict = parts.Any(p => p.Holds == false) ? ClaimVerdict.NotReproduced
            : parts.Any(p => p.Holds is null) ? ClaimVerdict.NotCheckable
            : ClaimVerdict.Reproduced;
        var evidence = string.Join("; ", parts.Select(p => p.Evidence + (p.Holds switch { true => " (holds)", false => " (fails)", null => " (not checkable)" })));
        return new PaperClaim(number, claim, verdict, rule, evidence);
    }

    private static PaperClaim NotCheckable(int number, string claim, string rule, string why) => new(number, claim, ClaimVerdict.NotCheckable, rule, why);

    /// <summary>Why the named trials cannot be judged yet (not finished, or failed), or null when they can.</summary>
    private static string? Unfinished(SweepAnalysis a, params string[] names)
    {
        var problems = names
            .Select(name => a[name]!)
            .Where(t => t.State is not (TrialState.Completed or TrialState.Diverged))
            .Select(t => $"{t.Name} is {t.State.ToString().ToLowerInvariant()}")
            .ToList();
        return problems.Count > 0 ? string.Join(", ", problems) + ": its curve is not final" : null;
    }

    private static PaperClaim Claim1(SweepAnalysis a)
    {
        const string claim = "CASE8 (learning rate 10× the others) does not learn at all: accuracy stays below 0.1.";
        string rule = $"CASE8 diverged, or its highest test accuracy is below {F(NoLearning)}";
        if (Unfinished(a, "CASE8") is { } why) return NotCheckable(1, claim, rule, why);
        return Verdict(1, claim, rule, CaseEightFails(a));
    }

    private static Part CaseEightFails(SweepAnalysis a)
    {
        var c8 = a["CASE8"]!;
        var highest = c8.MaxTestAccuracy;
        string max = highest is null ? "no test point" : $"highest test accuracy {F(highest)}";
        if (c8.Diverged) return new Part(true, $"CASE8 diverged at iteration {c8.Record.DivergedAtIteration} ({c8.Record.DivergenceReason}); {max}");
        return new Part(highest < NoLearning, $"CASE8 completed; {max}");
    }

    private static PaperClaim Claim2(SweepAnalysis a)
    {
        const string claim = "CASE6 (small batch, large learning rate) oscillates within about 10% after 200 iterations.";
        const int from = 200;
        const double band = 0.10;
        string rule = $"CASE6 does not diverge and, from iteration {from} on, its test accuracy stays within a band of {F(band, "0.00")} (max − min ≤ {F(band, "0.00")})";
        if (Unfinished(a, "CASE6") is { } why) return NotCheckable(2, claim, rule, why);
        var c6 = a["CASE6"]!;
        if (c6.Diverged) return Verdict(2, claim, rule, new Part(false, $"CASE6 diverged at iteration {c6.Record.DivergedAtIteration} ({c6.Record.DivergenceReason})"));
        var late = c6.TestPoints.Where(p => p.Iteration >= from).ToList();
        if (late.Count < 2) return Verdict(2, claim, rule, new Part(null, $"CASE6 has {late.Count} test point(s) from iteration {from} on"));
        double min = late.Min(p => p.TestAccuracy), max = late.Max(p => p.TestAccuracy);
        int drops = late.Zip(late.Skip(1), (First, Second) => (First, Second)).Count(pair => pair.Second.TestAccuracy < pair.First.TestAccuracy);
        return Verdict(2, claim, rule, new Part(max - min <= band,
            $"CASE6 from iteration {from}: test accuracy {F(min)}–{F(max)} (band {F(max - min)}) over {late.Count} test points, falling {drops} time(s) between consecutive points"));
    }

    /// <summary>Claim 3 (a): the low rates are compared with CASE1 at this share of CASE1's max-iter.</summary>
    internal const double Claim3EarlyShare = 0.2;

    /// <summary>Claim 3 (c): CASE5's steepest rise must end at or after this share of its max-iter.</summary>
    internal const double Claim3LateShare = 0.8;

    private static PaperClaim Claim3(SweepAnalysis a)
    {
        const string claim = "Low learning rates (CASE5, 7, 9) rise more slowly; all but CASE5 reach about 0.95 by iteration 1,000; CASE5 only starts rising sharply around 900–1,000.";
        var (c1, c5, c7, c9) = (a["CASE1"]!, a["CASE5"]!, a["CASE7"]!, a["CASE9"]!);
        // The iterations the rule names are this run's: a shorter run compares earlier.
        double early = Claim3EarlyShare * c1.MaxIter, late = Claim3LateShare * c5.MaxIter;
        string rule = $"(a) at {Share(Claim3EarlyShare)} of max-iter (iteration {F(early)}) CASE5, CASE7 and CASE9 are each below CASE1; " +
                      $"(b) CASE7 and CASE9 end at ≥ {F(AboutTarget)} and CASE5 below {F(AboutTarget)}; " +
                      $"(c) CASE5's largest rise between consecutive test points ends at or after {Share(Claim3LateShare)} of max-iter (iteration {F(late)})";
        if (Unfinished(a, "CASE1", "CASE5", "CASE7", "CASE9") is { } why) return NotCheckable(3, claim, rule, why);
        var at = new[] { c1, c5, c7, c9 }.Select(t => (t.Name, Accuracy: t.InterpolatedTestAccuracy(early))).ToList();
        var slower = at.Any(x => x.Accuracy is null)
            ? new Part(null, $"no test accuracy at iteration {F(early)} for {string.Join(", ", at.Where(x => x.Accuracy is null).Select(x => x.Name))}")
            : new Part(at.Skip(1).All(x => x.Accuracy < at[0].Accuracy), $"at iteration {F(early)}: {string.Join(", ", at.Select(x => $"{x.Name} {F(x.Accuracy)}"))}");

        var (f5, f7, f9) = (c5.FinalTestAccuracy, c7.FinalTestAccuracy, c9.FinalTestAccuracy);
        var reach = new Part(f7 >= AboutTarget && f9 >= AboutTarget && f5 < AboutTarget, $"final test accuracy CASE7 {F(f7)}, CASE9 {F(f9)}, CASE5 {F(f5)}");

        var points = c5.TestPoints.ToList();
        Part sharpLate;
        if (points.Count < 2) sharpLate = new Part(null, "CASE5 has fewer than two test points");
        else
        {
            var steepest = points.Zip(points.Skip(1), (First, Second) => (First, Second)).MaxBy(pair => pair.Second.TestAccuracy - pair.First.TestAccuracy);
            sharpLate = new Part(steepest.Second.Iteration >= late,
                $"CASE5's largest rise is {F(steepest.Second.TestAccuracy - steepest.First.TestAccuracy)} between iterations {steepest.First.Iteration} and {steepest.Second.Iteration} (max-iter {c5.MaxIter})");
        }
        return Verdict(3, claim, rule, slower, reach, sharpLate);
    }

    private static PaperClaim Claim4(SweepAnalysis a)
    {
        const string claim = "Time per 100 iterations is linear in batch size (CASE2 half of CASE1, CASE3 double); changing only the learning rate does not change time.";
        const double minRSquared = 0.9, halfLow = 0.35, halfHigh = 0.65, doubleLow = 1.6, doubleHigh = 2.4, sameTimeShare = 0.15;
        string rule = $"(a) the least-squares line of seconds per iteration against batch size over the completed trials has R² ≥ {F(minRSquared)}; " +
                      $"(b) CASE2/CASE1 time per iteration within {F(halfLow)}–{F(halfHigh)} and CASE3/CASE1 within {F(doubleLow)}–{F(doubleHigh)}; " +
                      $"(c) every completed batch-64 trial with another rate (CASE4, 5, 7, 8) within ±{Share(sameTimeShare)} of CASE1";
        var needed = new[] { "CASE1", "CASE2", "CASE3" }.Select(n => a[n]!).ToList();
        if (needed.FirstOrDefault(t => t.State != TrialState.Completed || t.SecondsPerIteration is null) is { } missing)
            return NotCheckable(4, claim, rule, $"{missing.Name} is {missing.State.ToString().ToLowerInvariant()}: no complete timing");
        var (c1, c2, c3) = (needed[0], needed[1], needed[2]);
        var fit = a.SecondsPerIterationFit;
        var linear = fit is null
            ? new Part(null, "no fit (fewer than two batch sizes completed)")
            : new Part(fit.RSquared >= minRSquared, $"fit over {fit.Count} completed trials: seconds/iteration = {G(fit.Slope)} × batch + {G(fit.Intercept)}, R² = {F(fit.RSquared)}");
        double r2 = c2.SecondsPerIteration!.Value / c1.SecondsPerIteration!.Value, r3 = c3.SecondsPerIteration!.Value / c1.SecondsPerIteration.Value;
        var ratios = new Part(r2 >= halfLow && r2 <= halfHigh && r3 >= doubleLow && r3 <= doubleHigh,
            $"seconds per 100 iterations CASE1 {F(100 * c1.SecondsPerIteration.Value)}, CASE2 {F(100 * c2.SecondsPerIteration.Value)} (×{F(r2)}), CASE3 {F(100 * c3.SecondsPerIteration.Value)} (×{F(r3)})");
        var rateOnly = new[] { "CASE4", "CASE5", "CASE7", "CASE8" }
            .Select(n => a[n]!)
            .Where(t => t.State == TrialState.Completed && t.SecondsPerIteration is not null)
            .Select(t => (t.Name, Change: t.SecondsPerIteration!.Value / c1.SecondsPerIteration.Value - 1))
            .ToList();
        var sameTime = rateOnly.Count == 0
            ? new Part(null, "no completed batch-64 trial with another rate")
            : new Part(rateOnly.All(x => Math.Abs(x.Change) <= sameTimeShare), $"time against CASE1: {string.Join(", ", rateOnly.Select(x => $"{x.Name} {Percent(x.Change)}"))}");
        return Verdict(4, claim, rule, linear, ratios, sameTime);
    }

    private static PaperClaim Claim5(SweepAnalysis a)
    {
        const string claim = "Per iteration, larger batches raise test accuracy faster, but in wall time CASE1 needs more than twice as long as CASE2 to reach about 0.95, and CASE3 twice as long as CASE1. All batch sizes reach their plateau around 400 iterations.";
        const double minRatio = 1.5;
        const int plateauBy = 500, neededMaxIter = 600;
        string rule = $"(a) iterations to test accuracy {F(PaperTarget)}: CASE3 ≤ CASE1 ≤ CASE2; (b) wall-clock seconds to {F(PaperTarget)}: CASE1/CASE2 ≥ {F(minRatio)} and CASE3/CASE1 ≥ {F(minRatio)}; " +
                      $"(c) CASE1, 2 and 3 each reach {Share(TrialAnalysis.PlateauShare)} of their plateau (mean of the last two test points) by iteration {plateauBy} (needs max-iter ≥ {neededMaxIter})";
        if (Unfinished(a, "CASE1", "CASE2", "CASE3") is { } why) return NotCheckable(5, claim, rule, why);
        var (c1, c2, c3) = (a["CASE1"]!, a["CASE2"]!, a["CASE3"]!);
        var (t1, t2, t3) = (c1.TimeTo(PaperTarget), c2.TimeTo(PaperTarget), c3.TimeTo(PaperTarget));
        string times = $"to {F(PaperTarget)}: CASE1 {Reach(t1)}, CASE2 {Reach(t2)}, CASE3 {Reach(t3)}";
        Part perIteration, wallTime;
        if (t1 is null || t2 is null || t3 is null)
        {
            perIteration = new Part(false, times);
            wallTime = new Part(false, $"wall-clock ratios need all three to reach {F(PaperTarget)}");
        }
        else
        {
            perIteration = new Part(t3.Iterations <= t1.Iterations && t1.Iterations <= t2.Iterations, times);
            double ratio12 = t1.Seconds / t2.Seconds, ratio31 = t3.Seconds / t1.Seconds;
            wallTime = new Part(ratio12 >= minRatio && ratio31 >= minRatio, $"CASE1/CASE2 = {F(ratio12)}, CASE3/CASE1 = {F(ratio31)}");
        }
        var trio = new[] { c1, c2, c3 };
        string plateaus = string.Join(", ", trio.Select(t => $"{t.Name} {(t.RecommendedMaxIter is { } it ? it.ToString(CultureInfo.InvariantCulture) : "-")}"));
        var plateau = trio.Any(t => t.MaxIter < neededMaxIter || t.RecommendedMaxIter is null)
            ? new Part(null, $"{Share(TrialAnalysis.PlateauShare)} of plateau at: {plateaus} (runs of {c1.MaxIter} iterations or unfinished trials cannot show a plateau by {plateauBy})")
            : new Part(trio.All(t => t.RecommendedMaxIter <= plateauBy), $"{Share(TrialAnalysis.PlateauShare)} of plateau at: {plateaus}");
        return Verdict(5, claim, rule, perIteration, wallTime, plateau);
    }

    private static PaperClaim Claim6(SweepAnalysis a)
    {
        const string claim = "Of the learning rates, 0.01 and 0.04 look best; CASE7 (0.0025) reaches the same final accuracy but needs more iterations; CASE5 (0.001) ends at less than half the others.";
        const double sameEndWithin = 0.02;
        string rule = "(a) CASE1 and CASE4 have the two highest mean test accuracies over their test points after iteration 0 among CASE1, 4, 5, 7, 8; " +
                      $"(b) CASE7's final test accuracy is within {F(sameEndWithin)} of CASE1's and it reaches {F(PaperTarget)} later than CASE1 (or never); (c) CASE5's final test accuracy is below half the mean of CASE1, 4 and 7";
        if (Unfinished(a, "CASE1", "CASE4", "CASE5", "CASE7", "CASE8") is { } why) return NotCheckable(6, claim, rule, why);
        var rates = new[] { "CASE1", "CASE4", "CASE5", "CASE7", "CASE8" }.Select(n => a[n]!).ToList();
        var means = rates
            .Select(t => (t.Name, Mean: t.TestPoints.Where(p => p.Iteration > 0).Select(p => (double?)p.TestAccuracy).Average()))
            .OrderByDescending(x => x.Mean ?? double.NegativeInfinity)
            .ToList();
        var best = new Part(means.Take(2).Select(x => x.Name).Order().SequenceEqual(["CASE1", "CASE4"]),
            $"mean test accuracy: {string.Join(", ", means.Select(x => $"{x.Name} {F(x.Mean)}"))}");

        var (c1, c4, c5, c7) = (a["CASE1"]!, a["CASE4"]!, a["CASE5"]!, a["CASE7"]!);
        var (t1, t7) = (c1.TimeTo(PaperTarget), c7.TimeTo(PaperTarget));
        var (f1, f4, f5, f7) = (c1.FinalTestAccuracy, c4.FinalTestAccuracy, c5.FinalTestAccuracy, c7.FinalTestAccuracy);
        bool? later = t1 is null ? null : t7 is null || t7.Iterations > t1.Iterations;
        bool? sameEnd = f1 is null || f7 is null ? null : Math.Abs(f7.Value - f1.Value) <= sameEndWithin;
        var slowerSame = new Part(All(sameEnd, later),
            $"final CASE7 {F(f7)} vs CASE1 {F(f1)}; iterations to {F(PaperTarget)}: CASE7 {Reach(t7)}, CASE1 {Reach(t1)}");

        double? others = f1 is null || f4 is null || f7 is null ? null : (f1.Value + f4.Value + f7.Value) / 3;
        var low = new Part(others is null || f5 is null ? null : f5 < 0.5 * others, $"final CASE5 {F(f5)} vs half the mean of CASE1, 4, 7 {F(others / 2)}");
        return Verdict(6, claim, rule, best, slowerSame, low);
    }

    private static PaperClaim Claim7(SweepAnalysis a)
    {
        const string claim = "Halving the batch and doubling the learning rate (CASE6) closely follows CASE1's curve; halving both (CASE9) stays well below CASE1 up to 400 iterations.";
        const double followWithin = 0.03, belowBy = 0.05;
        const int until = 400;
        string rule = $"(a) mean absolute difference of test accuracy between CASE6 and CASE1 at their common test points after iteration 0 ≤ {F(followWithin)}; " +
                      $"(b) at every common test point in (0, {until}] CASE9 is below CASE1, by at least {F(belowBy)} on average";
        if (Unfinished(a, "CASE1", "CASE6", "CASE9") is { } why) return NotCheckable(7, claim, rule, why);
        var (c1, c6, c9) = (a["CASE1"]!, a["CASE6"]!, a["CASE9"]!);
        var follow = Differences(c6, c1, p => p > 0);
        var follows = follow.Count == 0
            ? new Part(null, "CASE6 and CASE1 share no test point after iteration 0")
            : new Part(follow.Average(d => Math.Abs(d.Difference)) <= followWithin, $"CASE6 − CASE1: mean absolute difference {F(follow.Average(d => Math.Abs(d.Difference)))} over {follow.Count} test points");
        var early = Differences(c9, c1, p => p > 0 && p <= until);
        var below = early.Count == 0
            ? new Part(null, $"CASE9 and CASE1 share no test point in (0, {until}]")
            : new Part(early.All(d => d.Difference < 0) && -early.Average(d => d.Difference) >= belowBy,
                $"CASE9 − CASE1 up to {until}: {string.Join(", ", early.Select(d => $"{d.Iteration}: {Signed(d.Difference)}"))}");
        return Verdict(7, claim, rule, follows, below);
    }

    private static PaperClaim Claim8(SweepAnalysis a)
    {
        const string claim = "Only batch size changes memory: doubling it gives 126% of CASE1's memory, halving it 84%.";
        const double doubled = 126, halved = 84, slackPoints = 15, sameMemoryPoints = 5;
        string rule = $"(a) CASE3 uses more peak memory than CASE1 and CASE2 less; (b) CASE3/CASE1 within {F(doubled)}% ± {F(slackPoints)} points and CASE2/CASE1 within {F(halved)}% ± {F(slackPoints)} points; " +
                      $"(c) the batch-64 trials with other rates (CASE4, 5, 7, not diverged) within ±{F(sameMemoryPoints)}% of CASE1. On the CPU the figure is the peak resident memory of the trial's worker process (runtime, data and model included, and what the allocators keep from earlier trials of that process, up to about 50 MB: a figure can read high, never low), which pulls every ratio toward 100%; on CUDA it is device memory";
        var trio = new[] { "CASE1", "CASE2", "CASE3" }.Select(n => a[n]!).ToList();
        if (trio.FirstOrDefault(t => t.Record.PeakMemoryBytes <= 0) is { } missing) return NotCheckable(8, claim, rule, $"{missing.Name} has no memory reading");
        double m2 = 100.0 * trio[1].Record.PeakMemoryBytes / trio[0].Record.PeakMemoryBytes;
        double m3 = 100.0 * trio[2].Record.PeakMemoryBytes / trio[0].Record.PeakMemoryBytes;
        string numbers = $"peak memory CASE1 {MiB(trio[0].Record.PeakMemoryBytes)}, CASE2 {F(m2, "0.#")}%, CASE3 {F(m3, "0.#")}%";
        var direction = new Part(m3 > 100 && m2 < 100, numbers);
        var size = new Part(Math.Abs(m3 - doubled) <= slackPoints && Math.Abs(m2 - halved) <= slackPoints, $"paper: CASE2 {F(halved)}%, CASE3 {F(doubled)}%");
        var rateOnly = new[] { "CASE4", "CASE5", "CASE7" }
            .Select(n => a[n]!)
            .Where(t => !t.Diverged && t.Record.PeakMemoryBytes > 0)
            .Select(t => (t.Name, Percent: 100.0 * t.Record.PeakMemoryBytes / trio[0].Record.PeakMemoryBytes))
            .ToList();
        var rates = rateOnly.Count == 0
            ? new Part(null, "no batch-64 trial with another rate has a memory reading")
            : new Part(rateOnly.All(x => Math.Abs(x.Percent - 100) <= sameMemoryPoints), $"same batch, other rates: {string.Join(", ", rateOnly.Select(x => $"{x.Name} {F(x.Percent, "0.#")}%"))}");
        return Verdict(8, claim, rule, direction, size, rates);
    }

    private static PaperClaim Claim9(SweepAnalysis a)
    {
        const string claim = "To go faster at the same accuracy, shrink the batch and raise the base learning rate by the same ratio; too high a rate oscillates or fails to learn; under memory pressure, shrink the batch. Measuring time per iteration gives the best max-iteration count.";
        const double sameEndWithin = 0.01;
        string rule = $"(a) CASE6 (half the batch, twice the rate) reaches {F(PaperTarget)} in less wall-clock time than CASE1 and ends within {F(sameEndWithin)} of CASE1's final test accuracy; (b) claim 1's rule holds for CASE8; " +
                      "(c) CASE2 uses less peak memory than CASE1. The max-iteration advice is a method, applied in this report's recommended max-iter per trial, not a measurement";
        if (Unfinished(a, "CASE1", "CASE2", "CASE6", "CASE8") is { } why) return NotCheckable(9, claim, rule, why);
        var (c1, c2, c6) = (a["CASE1"]!, a["CASE2"]!, a["CASE6"]!);
        var (t1, t6) = (c1.TimeTo(PaperTarget), c6.TimeTo(PaperTarget));
        var (f1, f6) = (c1.FinalTestAccuracy, c6.FinalTestAccuracy);
        bool faster = t6 is not null && (t1 is null || t6.Seconds < t1.Seconds);
        bool? same = f1 is null || f6 is null ? null : f6 >= f1 - sameEndWithin;
        var quicker = new Part(All(faster, same),
            $"to {F(PaperTarget)}: CASE6 {Reach(t6)}, CASE1 {Reach(t1)}; final CASE6 {F(f6)}, CASE1 {F(f1)}");
        var tooHigh = CaseEightFails(a);
        var memory = c1.Record.PeakMemoryBytes <= 0 || c2.Record.PeakMemoryBytes <= 0
            ? new Part(null, "no memory reading for CASE1 or CASE2")
            : new Part(c2.Record.PeakMemoryBytes < c1.Record.PeakMemoryBytes, $"peak memory CASE2 {MiB(c2.Record.PeakMemoryBytes)} vs CASE1 {MiB(c1.Record.PeakMemoryBytes)}");
        return Verdict(9, claim, rule, quicker, tooHigh, memory);
    }

    /// <summary>Three-valued "and": false when any is false, else null when any is unknown.</summary>
    private static bool? All(params bool?[] parts) => parts.Any(p => p == false) ? false : parts.Any(p => p is null) ? null : true;

    private static List<(int Iteration, double Difference)> Differences(TrialAnalysis trial, TrialAnalysis reference, Func<int, bool> which) =>
        trial.TestPoints
            .Where(p => which(p.Iteration))
            .Select(p => (p.Iteration, Reference: reference.TestAccuracyAt(p.Iteration), p.TestAccuracy))
            .Where(x => x.Reference is not null)
            .Select(x => (x.Iteration, x.TestAccuracy - x.Reference!.Value))
            .ToList();

    internal static string Reach(TimeToTarget? time) =>
        time is null ? "not reached" : string.Create(CultureInfo.InvariantCulture, $"{time.Iterations} it / {time.Seconds:0.##} s");

    internal static string F(double? value, string format = "0.###") => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "-";

    internal static string G(double value) => value.ToString("G4", CultureInfo.InvariantCulture);

    internal static string Signed(double value) => value.ToString("+0.###;−0.###;0", CultureInfo.InvariantCulture);

    /// <summary>A share as a percentage: 0.2 → "20%".</summary>
    internal static string Share(double share) => (100 * share).ToString("0.##", CultureInfo.InvariantCulture) + "%";

    internal static string Percent(double change) => (100 * change).ToString("+0.#;−0.#;0", CultureInfo.InvariantCulture) + "%";

    internal static string MiB(long bytes) => (bytes / 1048576.0).ToString("0.#", CultureInfo.InvariantCulture) + " MiB";
}
