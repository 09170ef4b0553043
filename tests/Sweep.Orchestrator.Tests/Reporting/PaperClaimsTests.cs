using System.Text.RegularExpressions;
using Sweep.Orchestrator.Reporting;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>The verdicts on the paper's claims, on hand-made CASE1..CASE9 events.</summary>
public sealed class PaperClaimsTests
{
    [Fact]
    public void Curves_that_bear_out_the_paper_reproduce_every_claim()
    {
        var log = ReportEvents.PaperSweep();
        var a = SweepAnalysis.Compute(log.Fold(), log.Events);
        Assert.True(a.IsPaperPreset);
        Assert.Equal("CASE1", a.Reference!.Name);
        Assert.Equal(Enumerable.Range(1, 9), a.PaperClaims.Select(c => c.Number));
        foreach (var claim in a.PaperClaims)
        {
            Assert.True(claim.Verdict == ClaimVerdict.Reproduced, $"claim {claim.Number}: {claim.Verdict}: {claim.Evidence}");
            Assert.False(string.IsNullOrWhiteSpace(claim.Rule));
        }
        Assert.Contains("CASE8 diverged at iteration 37", a.PaperClaims[0].Evidence);
        Assert.Contains("CASE1/CASE2 = 1.857", a.PaperClaims[4].Evidence); // 2.08 s against 1.12 s to 0.95
        Assert.Contains("R² = 1", a.PaperClaims[3].Evidence);
        Assert.Contains("CASE2 84%, CASE3 126%", a.PaperClaims[7].Evidence);
        // k = −1 (CASE6) tracks CASE1 best per iteration, as the paper says
        Assert.Equal(-1.0, a.BestPerIteration!.Exponent, 9);
        Assert.Equal(["CASE6"], a.BestPerIteration.Trials);
    }

    [Fact]
    public void A_learning_case8_and_an_unfinished_case6_give_not_reproduced_and_not_checkable()
    {
        var log = ReportEvents.PaperSweep(finishAll: false);
        var events = log.Events
            .Select(e => e is Protocol.Events.TrialDiverged d && d.TrialId == log.Id("CASE8") ? new Protocol.Events.TrialCompleted(d.TrialId, d.Attempt, d.At) : e)
            .Select(e => e is Protocol.Events.TrialProgress p && p.TrialId == log.Id("CASE8") ? p with { Metrics = p.Metrics with { TestAccuracy = 0.5 } } : e)
            .ToList();
        var state = Sweep.Orchestrator.Coordination.SweepState.Start((Protocol.Events.SweepStarted)events[0]);
        foreach (var e in events.Skip(1)) state.Apply(e);
        var a = SweepAnalysis.Compute(state, events);

        var claims = a.PaperClaims.ToDictionary(c => c.Number);
        Assert.Equal(ClaimVerdict.NotReproduced, claims[1].Verdict);
        Assert.Contains("CASE8 completed; highest test accuracy 0.5", claims[1].Evidence);
        Assert.Equal(ClaimVerdict.NotCheckable, claims[2].Verdict);
        Assert.Contains("CASE6 is running", claims[2].Evidence);
        Assert.Equal(ClaimVerdict.NotCheckable, claims[7].Verdict);
        Assert.Equal(ClaimVerdict.Reproduced, claims[4].Verdict); // CASE6 is not needed for time
        Assert.Equal(ClaimVerdict.Reproduced, claims[8].Verdict);

        var md = ReportMarkdown.Write(a, []);
        Assert.Contains("| 1 | CASE8 (learning rate 10× the others) does not learn at all: accuracy stays below 0.1. | **not reproduced** |", md);
        Assert.Contains("| 2 |", md);
        Assert.Contains("**not checkable here**", md);
        Assert.Contains("**reproduced**", md);
        Assert.Contains(SweepReportWriter.Findings(a), f => f.StartsWith("paper claims: ", StringComparison.Ordinal) && f.Contains("not reproduced (1"));
    }

    /// <summary>The paper preset run for 200 iterations (`--set sweep.max-iter=200`): test points at 0, 100 and 200.</summary>
    private static SweepAnalysis ShortPaperRun()
    {
        var cases = new (string Name, int Batch, double Lr, double[] Curve)[]
        {
            ("CASE1", 64, 0.01, [0.1, 0.85, 0.92]), ("CASE2", 32, 0.01, [0.1, 0.8, 0.9]), ("CASE3", 128, 0.01, [0.1, 0.88, 0.94]),
            ("CASE4", 64, 0.04, [0.1, 0.88, 0.93]), ("CASE5", 64, 0.001, [0.1, 0.12, 0.14]), ("CASE6", 32, 0.02, [0.1, 0.84, 0.92]),
            ("CASE7", 64, 0.0025, [0.1, 0.6, 0.78]), ("CASE8", 64, 0.1, [0.1]), ("CASE9", 32, 0.005, [0.1, 0.55, 0.7]),
        };
        var log = new ReportEvents("short-paper", cases.Select(c => ReportEvents.Trial(c.Name, c.Batch, c.Lr, 200)).ToArray());
        foreach (var c in cases.Where(c => c.Name != "CASE8")) log.Completed(c.Name, c.Curve, 0.5, 100 * ReportEvents.MiB);
        log.Start("CASE8").Points("CASE8", [0.1], 0.5, 100 * ReportEvents.MiB).Diverge("CASE8", 37, "training loss is not finite").Finish();
        return SweepAnalysis.Compute(log.Fold(), log.Events);
    }

    [Fact]
    public void Claim_3s_rule_names_the_iterations_its_check_used_for_a_short_run_and_for_the_papers_length()
    {
        // 200 iterations: CASE1, 5, 7, 9 compared at 20% of 200 = 40 (interpolated between 0 and 100), CASE5's rise judged from 80% = 160.
        var shortRun = ShortPaperRun().PaperClaims[2];
        Assert.Equal(3, shortRun.Number);
        Assert.Equal("(a) at 20% of max-iter (iteration 40) CASE5, CASE7 and CASE9 are each below CASE1; (b) CASE7 and CASE9 end at ≥ 0.94 and CASE5 below 0.94; " +
                     "(c) CASE5's largest rise between consecutive test points ends at or after 80% of max-iter (iteration 160)", shortRun.Rule);
        Assert.StartsWith("at iteration 40: CASE1 0.4, CASE5 0.108, CASE7 0.3, CASE9 0.28 (holds); ", shortRun.Evidence);

        // The paper's 1,000 iterations: 200 and 800.
        var log = ReportEvents.PaperSweep();
        var full = SweepAnalysis.Compute(log.Fold(), log.Events).PaperClaims[2];
        Assert.Contains("(a) at 20% of max-iter (iteration 200) ", full.Rule);
        Assert.EndsWith("at or after 80% of max-iter (iteration 800)", full.Rule);
        Assert.StartsWith("at iteration 200: CASE1 0.92, CASE5 0.14, CASE7 0.78, CASE9 0.7 (holds); ", full.Evidence);

        // One source: the iteration in the rule is the one in the evidence, for both runs.
        foreach (var claim in new[] { shortRun, full })
        {
            string ruleIteration = Regex.Match(claim.Rule, @"^\(a\) at 20% of max-iter \(iteration (\d+)\)").Groups[1].Value;
            string checkedIteration = Regex.Match(claim.Evidence, @"^at iteration (\d+): ").Groups[1].Value;
            Assert.NotEqual("", ruleIteration);
            Assert.Equal(ruleIteration, checkedIteration);
        }
    }

    [Fact]
    public void Every_claims_rule_is_written_from_the_same_thresholds_for_any_run_length()
    {
        // The thresholds that do not depend on max-iter read the same in a short run as in a full one; claim 3's iterations are the run's.
        var log = ReportEvents.PaperSweep();
        var full = SweepAnalysis.Compute(log.Fold(), log.Events).PaperClaims;
        var shortRun = ShortPaperRun().PaperClaims;
        for (int i = 0; i < 9; i++)
        {
            if (i == 2) Assert.NotEqual(full[i].Rule, shortRun[i].Rule);
            else Assert.Equal(full[i].Rule, shortRun[i].Rule);
        }
        Assert.Equal("CASE8 diverged, or its highest test accuracy is below 0.1", full[0].Rule);
        Assert.Equal("CASE6 does not diverge and, from iteration 200 on, its test accuracy stays within a band of 0.10 (max − min ≤ 0.10)", full[1].Rule);
        Assert.StartsWith("(a) iterations to test accuracy 0.95: CASE3 ≤ CASE1 ≤ CASE2; (b) wall-clock seconds to 0.95: CASE1/CASE2 ≥ 1.5 and CASE3/CASE1 ≥ 1.5; (c) CASE1, 2 and 3 each reach 99% of their plateau", full[4].Rule);
        Assert.StartsWith("(a) CASE3 uses more peak memory than CASE1 and CASE2 less; (b) CASE3/CASE1 within 126% ± 15 points and CASE2/CASE1 within 84% ± 15 points; (c) the batch-64 trials with other rates (CASE4, 5, 7, not diverged) within ±5% of CASE1.", full[7].Rule);
    }

    [Fact]
    public void Memory_ratios_far_from_the_papers_are_not_reproduced()
    {
        var log = ReportEvents.PaperSweep();
        var events = log.Events
            .Select(e => e is Protocol.Events.TrialProgress p && p.TrialId == log.Id("CASE3") ? p with { Metrics = p.Metrics with { PeakMemoryBytes = 200 * ReportEvents.MiB } } : e)
            .ToList();
        var state = Sweep.Orchestrator.Coordination.SweepState.Start((Protocol.Events.SweepStarted)events[0]);
        foreach (var e in events.Skip(1)) state.Apply(e);
        var claim8 = SweepAnalysis.Compute(state, events).PaperClaims[7];
        Assert.Equal(ClaimVerdict.NotReproduced, claim8.Verdict);
        Assert.Contains("CASE3 200%", claim8.Evidence);
    }
}
