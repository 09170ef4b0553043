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
