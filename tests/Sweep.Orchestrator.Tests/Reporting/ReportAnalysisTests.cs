using Sweep.Orchestrator.Reporting;
using Sweep.Protocol.Events;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>The report's computations on hand-made events whose answers are known exactly.</summary>
public sealed class ReportAnalysisTests
{
    private const double Tolerance = 1e-9;

    private static SweepAnalysis Small()
    {
        var log = ReportEvents.SmallSweep();
        return SweepAnalysis.Compute(log.Fold(), log.Events);
    }

    [Fact]
    public void Time_to_target_counts_iterations_and_cumulative_seconds_up_to_the_first_point_at_target()
    {
        var a = Small();
        Assert.Equal(new TimeToTarget(400, 1.78), Round(a["b32"]!.TimeToTarget));
        Assert.Equal(new TimeToTarget(300, 2.32), Round(a["b64"]!.TimeToTarget));
        Assert.Equal(new TimeToTarget(200, 2.86), Round(a["b128"]!.TimeToTarget));
        Assert.Null(a["b64-hot"]!.TimeToTarget);
        Assert.Equal("b32", a.BestByTimeToTarget!.Name);

        var stricter = SweepAnalysis.Compute(ReportEvents.SmallSweep().Fold(), ReportEvents.SmallSweep().Events, targetAccuracy: 0.975);
        Assert.Equal(0.975, stricter.TargetAccuracy);
        Assert.Null(stricter["b64"]!.TimeToTarget);
        Assert.Equal(new TimeToTarget(400, 5.62), Round(stricter["b128"]!.TimeToTarget));
        Assert.Equal("b128", stricter.BestByTimeToTarget!.Name);

        static TimeToTarget? Round(TimeToTarget? t) => t is null ? null : t with { Seconds = Math.Round(t.Seconds, 9) };
    }

    [Fact]
    public void Trials_within_a_factor_root_two_of_the_reference_batch_imply_no_coupling_exponent()
    {
        // Reference: the median batch, 64. 48 (r = 0.75) and 80 (r = 1.25) are nearer than √2 (their
        // rates would read as k = log(2)/log(0.75) = −2.41 and log(0.9)/log(1.25) = −0.47); 32 and 128 are
        // a doubling away: k = log(0.5)/log(0.5) = 1 and log(2)/log(2) = 1.
        var log = new ReportEvents("near",
            ReportEvents.Trial("b32", 32, 0.005, 500), ReportEvents.Trial("b48", 48, 0.02, 500), ReportEvents.Trial("b64", 64, 0.01, 500),
            ReportEvents.Trial("b80", 80, 0.009, 500), ReportEvents.Trial("b128", 128, 0.02, 500));
        foreach (var name in new[] { "b32", "b48", "b64", "b80", "b128" }) log.Completed(name, [0.1, 0.8, 0.9, 0.95, 0.96, 0.97], 0.5, 60 * ReportEvents.MiB);
        var a = SweepAnalysis.Compute(log.Finish().Fold(), log.Events);

        Assert.Equal("b64", a.Reference!.Name);
        Assert.Equal([("b32", 1.0), ("b128", 1.0)], a.Couplings.Select(c => (c.Trial, c.Exponent)));
        Assert.Contains(" 2 trial(s) with a batch size other than the reference's but within a factor √2 of it are left out", ReportMarkdown.Write(a, []));
        Assert.DoesNotContain("within a factor √2", ReportMarkdown.Write(Small(), []));
    }

    [Fact]
    public void The_memory_finding_gives_each_batch_sizes_smallest_reading()
    {
        // Reference b64 at 72 MiB. Batch 32 read 56 and 80 MiB (the second after a larger trial in its
        // process): 56 / 72 = 77.8%, not the mean's 94.4%. Batch 128: 104 / 72 = 144.4%.
        var log = new ReportEvents("memory",
            ReportEvents.Trial("b32", 32, 0.005, 500), ReportEvents.Trial("b32-late", 32, 0.02, 500), ReportEvents.Trial("b64", 64, 0.01, 500), ReportEvents.Trial("b128", 128, 0.01, 500));
        log.Completed("b32", [0.1, 0.9], 0.4, 56 * ReportEvents.MiB);
        log.Completed("b32-late", [0.1, 0.9], 0.4, 80 * ReportEvents.MiB);
        log.Completed("b64", [0.1, 0.9], 0.7, 72 * ReportEvents.MiB);
        log.Completed("b128", [0.1, 0.9], 1.4, 104 * ReportEvents.MiB);
        var a = SweepAnalysis.Compute(log.Finish().Fold(), log.Events);
        Assert.Contains("peak memory against b64 (batch 64): batch 32 77.8%, batch 128 144.4%", SweepReportWriter.Findings(a));
    }

    [Fact]
    public void The_best_trial_finding_gives_its_parameters_and_its_lead_over_the_runner_up()
    {
        // b128 ends at 0.98; b32 and b64 both at 0.97 (b32 first in spec order); b64-hot diverged:
        // 0.98 − 0.97 = 1.00 point ahead of b32.
        var findings = SweepReportWriter.Findings(Small());
        Assert.Equal("highest final test accuracy: b128 (0.9800)", findings[1]);
        Assert.Equal("best trial b128: batch 128, base lr 0.01; 1.00 points ahead of b32 (0.9700)", findings[2]);
    }

    /// <summary>
    /// The user's case by hand: blows-up reaches 0.96 at iteration 100 (0.84 s) and diverges at 150; stable
    /// reaches 0.97 at 200 (1.58 s) and completes; late is still running at 100 with 0.99; gone failed at 0.98.
    /// </summary>
    private static ReportEvents DivergedAfterTarget()
    {
        var log = new ReportEvents("eligible",
            ReportEvents.Trial("stable", 64, 0.05, 200), ReportEvents.Trial("blows-up", 64, 0.5, 200),
            ReportEvents.Trial("late", 32, 0.05, 200), ReportEvents.Trial("gone", 32, 0.1, 200), ReportEvents.Trial("waiting", 16, 0.05, 200));
        log.Completed("stable", [0.1, 0.9, 0.97], 0.74, 72 * ReportEvents.MiB);
        log.Start("blows-up").Points("blows-up", [0.1, 0.96], 0.74, 72 * ReportEvents.MiB).Diverge("blows-up", 150, "loss is NaN");
        log.Start("late").Points("late", [0.1, 0.99], 0.1, 56 * ReportEvents.MiB);
        log.Start("gone").Points("gone", [0.1, 0.98], 0.1, 56 * ReportEvents.MiB).Fail("gone", "boom", final: true);
        return log;
    }

    [Fact]
    public void Only_a_completed_trial_can_be_best_by_time_to_target_or_final_accuracy()
    {
        var log = DivergedAfterTarget();
        var a = SweepAnalysis.Compute(log.Fold(), log.Events);
        // Every other trial was faster to 0.95 or ends higher, and none of them can be best.
        Assert.Equal(new TimeToTarget(100, 0.84), a["blows-up"]!.TimeToTarget! with { Seconds = Math.Round(a["blows-up"]!.TimeToTarget!.Seconds, 9) });
        Assert.Equal(new TimeToTarget(200, 1.58), a["stable"]!.TimeToTarget! with { Seconds = Math.Round(a["stable"]!.TimeToTarget!.Seconds, 9) });
        Assert.Equal("stable", a.BestByTimeToTarget!.Name);
        Assert.Equal("stable", a.BestByFinalAccuracy!.Name);
        Assert.Equal(0.97, a.BestByFinalAccuracy.FinalTestAccuracy);
        Assert.Equal(["blows-up", "late", "gone", "waiting"], a.NotEligible.Select(t => t.Name));
        Assert.Equal("blows-up (diverged at 150), late (running, at iteration 100), gone (failed), waiting (queued)", a.NotEligibleList(10));
        Assert.Equal("blows-up (diverged at 150), late (running, at iteration 100) and 2 more", a.NotEligibleList(2));

        var findings = SweepReportWriter.Findings(a);
        Assert.Equal("4 of 5 trials reach test accuracy 0.95; fastest: stable (200 iterations, 1.58 s)", findings[0]);
        Assert.Equal("highest final test accuracy: stable (0.9700)", findings[1]);
        Assert.Equal("best trial stable: batch 64, base lr 0.05; the only completed trial", findings[2]);
        Assert.Equal("not eligible as best (only completed trials are): blows-up (diverged at 150), late (running, at iteration 100), gone (failed), waiting (queued)", findings[3]);

        var md = ReportMarkdown.Write(a, []);
        Assert.Contains("\nBest trial by time to 0.95: **stable** (200 iterations, 1.58 s).\n", md);
        Assert.Contains("\nBest trial by final test accuracy: **stable** (0.9700).\n", md);
        Assert.Contains("\nNot eligible: blows-up (diverged at 150), late (running, at iteration 100), gone (failed), waiting (queued).\n", md);
        Assert.Contains("\n- blows-up: 100 iterations, 0.84 s (diverged at 150: not eligible as best)\n", md);
        Assert.Contains("\n- stable: 200 iterations, 1.58 s\n", md);
        Assert.DoesNotContain("**blows-up**", md);
    }

    [Fact]
    public void When_only_trials_that_cannot_be_best_reach_the_target_there_is_no_best_by_time()
    {
        var log = new ReportEvents("none", ReportEvents.Trial("slow", 64, 0.01, 200), ReportEvents.Trial("blows-up", 64, 0.5, 200));
        log.Completed("slow", [0.1, 0.5, 0.6], 0.74, 72 * ReportEvents.MiB);
        log.Start("blows-up").Points("blows-up", [0.1, 0.96], 0.74, 72 * ReportEvents.MiB).Diverge("blows-up", 150, "loss is NaN").Finish();
        var a = SweepAnalysis.Compute(log.Fold(), log.Events);
        Assert.Null(a.BestByTimeToTarget);
        Assert.Equal("slow", a.BestByFinalAccuracy!.Name);
        Assert.Equal("1 of 2 trials reach test accuracy 0.95, none of them completed: no fastest trial", SweepReportWriter.Findings(a)[0]);
        Assert.Contains("\nNo completed trial reached test accuracy 0.95.\n", ReportMarkdown.Write(a, []));
    }

    [Fact]
    public void The_best_coupling_exponent_counts_completed_trials_only()
    {
        // b32 tracks b64 perfectly per iteration so far, but it is still running: no exponent group may rest on it.
        var log = new ReportEvents("coupling", ReportEvents.Trial("b64", 64, 0.01, 200), ReportEvents.Trial("b32", 32, 0.02, 200), ReportEvents.Trial("b128", 128, 0.01, 200));
        log.Completed("b64", [0.1, 0.8, 0.9], 0.74, 72 * ReportEvents.MiB);
        log.Start("b32").Points("b32", [0.1, 0.8, 0.9], 0.42, 56 * ReportEvents.MiB);
        log.Completed("b128", [0.1, 0.7, 0.85], 1.38, 104 * ReportEvents.MiB);
        var a = SweepAnalysis.Compute(log.Fold(), log.Events);
        Assert.Equal(0.0, a.Couplings.Single(c => c.Trial == "b32").PerIterationMad!.Value, Tolerance);
        var only = Assert.Single(a.CouplingByExponent);
        Assert.Equal(["b128"], only.Trials);
        Assert.Equal(0.075, only.MeanPerIterationMad!.Value, Tolerance); // |0.7-0.8| and |0.85-0.9|
        Assert.Equal(0.0, a.BestPerIteration!.Exponent);
        Assert.Contains("\n| b32 (running) | 32 | 0.5 | 0.02 | -1 | 0.0000 (2) |", ReportMarkdown.Write(a, []));
    }

    [Fact]
    public void A_diverged_trial_shows_the_iteration_it_reached_even_from_a_state_folded_before_divergence_set_it()
    {
        // As a snapshot written before divergences set the iteration holds it: diverged at 20, iteration still 0.
        var log = new ReportEvents("old", ReportEvents.Trial("stable", 64, 0.05, 200), ReportEvents.Trial("blows-up", 64, 0.5, 200));
        var folded = log.Fold().ToSnapshot();
        var old = folded with
        {
            Trials =
            [
                folded.Trials[0],
                folded.Trials[1] with { State = TrialState.Diverged, Attempts = 1, Iteration = 0, DivergedAtIteration = 20, DivergenceReason = "loss is NaN" },
            ],
        };
        var state = Sweep.Orchestrator.Coordination.SweepState.FromSnapshot(old);
        var row = StatusView.Table(state).Split(Environment.NewLine)[2];
        Assert.Equal("blows-up  64     0.5      Diverged  1         20/200  -         -     -         -         diverged at 20: loss is NaN", row);
        Assert.Equal(20, StatusView.Status(state).Trials[1].Iteration);
        var a = SweepAnalysis.Compute(state, log.Events);
        Assert.Equal("20", ReportFiles.ParseCsv(ReportCsv.Trials(a))[2][8]);
        Assert.Equal("stable (queued), blows-up (diverged at 20)", a.NotEligibleList(10));

        // A trial that is not diverged keeps its own iteration, whatever an old divergence field says.
        var requeued = folded.Trials[1] with { State = TrialState.Queued, Iteration = 0, DivergedAtIteration = 20 };
        Assert.Equal(0, StatusView.IterationReached(requeued));
    }

    [Fact]
    public void Seconds_per_iteration_exactly_linear_in_batch_size_fit_with_r_squared_one()
    {
        var fit = Small().SecondsPerIterationFit!;
        Assert.Equal(3, fit.Count); // the diverged trial is not a completed one
        Assert.Equal(0.0001, fit.Slope, Tolerance);
        Assert.Equal(0.001, fit.Intercept, Tolerance);
        Assert.Equal(1.0, fit.RSquared, Tolerance);
    }

    [Fact]
    public void Least_squares_fit_of_noisy_points_and_too_few_points()
    {
        var fit = LinearFit.Of([(1, 1), (2, 3), (3, 2)])!;
        Assert.Equal(0.5, fit.Slope, Tolerance);
        Assert.Equal(1.0, fit.Intercept, Tolerance);
        Assert.Equal(0.25, fit.RSquared, Tolerance); // SSres 1.5 of SStot 2
        Assert.Null(LinearFit.Of([(64, 1), (64, 2)]));
        Assert.Null(LinearFit.Of([(64, 1)]));
    }

    [Fact]
    public void The_reference_is_the_median_batch_and_memory_is_relative_to_it()
    {
        var a = Small();
        Assert.Equal("b64", a.Reference!.Name);
        Assert.Equal(56.0 / 72 * 100, a["b32"]!.MemoryPercentOfReference!.Value, Tolerance);
        Assert.Equal(104.0 / 72 * 100, a["b128"]!.MemoryPercentOfReference!.Value, Tolerance);
        Assert.Equal(100.0, a["b64"]!.MemoryPercentOfReference!.Value, Tolerance);
    }

    [Fact]
    public void Divergences_are_listed_with_iteration_and_reason()
    {
        var divergence = Assert.Single(Small().Divergences);
        Assert.Equal(new DivergenceFinding("b64-hot", 37, "training loss is not finite, \"NaN\""), divergence);
    }

    [Fact]
    public void Coupling_exponent_and_tracking_per_iteration_and_per_epoch()
    {
        var a = Small();
        var b32 = a.Couplings.Single(c => c.Trial == "b32");
        Assert.Equal(0.5, b32.Ratio, Tolerance);
        Assert.Equal(1.0, b32.Exponent, Tolerance); // half the batch, half the rate
        Assert.Equal(0.038, b32.PerIterationMad!.Value, Tolerance);
        Assert.Equal(5, b32.PerIterationPoints);
        // per epoch: b32 at i against b64 at i/2 (interpolated): |0.7-0.45|, |0.85-0.8|, |0.92-0.85|, |0.96-0.9|, |0.97-0.925|
        Assert.Equal(0.095, b32.PerEpochMad!.Value, Tolerance);
        Assert.Equal(5, b32.PerEpochPoints);

        var b128 = a.Couplings.Single(c => c.Trial == "b128");
        Assert.Equal(0.0, b128.Exponent, Tolerance);
        Assert.Equal(0.028, b128.PerIterationMad!.Value, Tolerance);
        Assert.Equal(0.035, b128.PerEpochMad!.Value, Tolerance); // 100 vs 200 and 200 vs 400; 300 → 600 is past the reference
        Assert.Equal(2, b128.PerEpochPoints);

        Assert.DoesNotContain(a.Couplings, c => c.Trial is "b64" or "b64-hot"); // same batch as the reference
        Assert.Equal(0.0, a.BestPerIteration!.Exponent);
        Assert.Equal(0.0, a.BestPerEpoch!.Exponent);
        Assert.Equal([0.0, 1.0], a.CouplingByExponent.Select(s => s.Exponent));
    }

    [Fact]
    public void Recommended_max_iter_is_the_first_point_at_99_percent_of_the_plateau()
    {
        var a = Small();
        Assert.Equal(0.965, a["b32"]!.PlateauAccuracy!.Value, Tolerance);
        Assert.Equal(400, a["b32"]!.RecommendedMaxIter); // 0.9554 needed: 0.92 at 300 is short, 0.96 at 400
        Assert.Equal(400, a["b64"]!.RecommendedMaxIter);
        Assert.Equal(400, a["b128"]!.RecommendedMaxIter); // 0.9702 needed: 0.97 at 300 is just short
        Assert.Null(a["b64-hot"]!.RecommendedMaxIter);
    }

    [Fact]
    public void A_resumed_attempt_keeps_the_earlier_points_up_to_its_checkpoint()
    {
        var a = Small();
        var b128 = a["b128"]!;
        Assert.Equal([0, 100, 200, 300, 400, 500], b128.Points.Select(p => p.Iteration));
        Assert.Equal([0.1, 0.85, 0.95, 0.97, 0.98, 0.98], b128.Points.Select(p => p.TestAccuracy)); // not the first attempt's 0.5 at 300
        Assert.Equal(2, b128.Record.Attempts);
        Assert.Equal(0.0138, b128.SecondsPerIteration!.Value, Tolerance);
    }

    [Fact]
    public void A_restart_from_scratch_keeps_only_the_last_attempt()
    {
        var log = new ReportEvents("restart", ReportEvents.Trial("t", 64, 0.01, 300));
        log.Start("t").Points("t", [0.1, 0.5, 0.6], 1, 10).Fail("t", "boom").Requeue("t", fromScratch: true);
        log.Start("t", attempt: 2).Points("t", [0.1, 0.8, 0.9, 0.95], 1, 10, attempt: 2).Complete("t", attempt: 2).Finish();
        var curve = TrialCurves.FromEvents(log.Events)[log.Id("t")];
        Assert.Equal([0.1, 0.8, 0.9, 0.95], curve.Select(p => p.TestAccuracy));

        var a = SweepAnalysis.Compute(log.Fold(), log.Events);
        Assert.Equal("t", a.Reference!.Name);
        Assert.Empty(a.Couplings);
        Assert.Null(a.SecondsPerIterationFit);
        Assert.Equal(new TimeToTarget(300, 3.1), a["t"]!.TimeToTarget! with { Seconds = Math.Round(a["t"]!.TimeToTarget!.Seconds, 9) });
    }

    [Fact]
    public void An_attempt_that_found_no_checkpoint_and_restarted_from_scratch_keeps_only_its_own_points()
    {
        var log = new ReportEvents("scratch", ReportEvents.Trial("t", 64, 0.01, 300));
        log.Start("t").Points("t", [0.1, 0.5, 0.6], 1, 10).Checkpoint("t", 200).Fail("t", "node lost").Requeue("t");
        log.Start("t", attempt: 2, fromIteration: 200);
        var events = log.Events.Append(new TrialRestartedFromScratch(log.Id("t"), 2, "/tmp/t.ckpt", DateTimeOffset.UnixEpoch)).ToList();
        var more = new ReportEvents("scratch", ReportEvents.Trial("t", 64, 0.01, 300)).Points("t", [0.1, 0.8, 0.9, 0.95], 1, 10, attempt: 2).Complete("t", attempt: 2);
        events.AddRange(more.Events.Skip(1));
        Assert.Equal([0.1, 0.8, 0.9, 0.95], TrialCurves.FromEvents(events)[log.Id("t")].Select(p => p.TestAccuracy));

        // The same without the restart, the second attempt reporting from 300 on: the first attempt's points up to 200 stay.
        var tail = new ReportEvents("scratch", ReportEvents.Trial("t", 64, 0.01, 300)).Points("t", [0.95], 1, 10, attempt: 2, firstIteration: 300).Complete("t", attempt: 2);
        var resumed = log.Events.Concat(tail.Events.Skip(1)).ToList();
        Assert.Equal([0.1, 0.5, 0.6, 0.95], TrialCurves.FromEvents(resumed)[log.Id("t")].Select(p => p.TestAccuracy));
    }

    [Fact]
    public void A_trial_without_events_has_an_empty_curve_and_the_sweep_is_not_the_paper_preset()
    {
        var log = new ReportEvents("queued", ReportEvents.Trial("CASE1", 64, 0.01), ReportEvents.Trial("other", 32, 0.01));
        log.Completed("CASE1", [0.1, 0.9], 1, 10);
        var a = SweepAnalysis.Compute(log.Fold(), log.Events);
        Assert.False(a.IsPaperPreset);
        Assert.Empty(a.PaperClaims);
        Assert.Empty(a["other"]!.Points);
        Assert.Equal(TrialState.Queued, a["other"]!.State);
        Assert.Equal("CASE1", a.Reference!.Name); // the only completed trial
    }
}
