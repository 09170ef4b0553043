using Sweep.Orchestrator.Reporting;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>
/// The report at a thousand trials: no finding names more than a few trials, report.md's per-trial
/// lists show the top ones and point to trials.csv, which keeps every trial; and what early stopping
/// saved, checked against the sums worked out here.
/// </summary>
public sealed class ReportScaleTests
{
    /// <summary>
    /// 1,000 trials of 400 iterations, test points every 100: every fourth diverges at 150, every
    /// fourth (from the second) is stopped at 100, the rest complete with final accuracy rising with
    /// their index. Timed at 1 s per 100 iterations.
    /// </summary>
    private static ReportEvents Thousand()
    {
        var trials = Enumerable.Range(0, 1000).Select(i => ReportEvents.Trial($"t{i:0000}", 16 << (i % 4), 0.01 + i * 1e-5, maxIter: 400)).ToArray();
        var log = new ReportEvents("big", trials);
        for (int i = 0; i < 1000; i++)
        {
            string name = $"t{i:0000}";
            double final = 0.9 + i * 5e-5;
            switch (i % 4)
            {
                case 0:
                    log.Start(name).Points(name, [0.1, 0.5], 1.0, ReportEvents.MiB).Diverge(name, 150, "loss is NaN");
                    break;
                case 1:
                    log.Start(name).Points(name, [0.1, 0.4], 1.0, ReportEvents.MiB).StopEarly(name, 100, 0.4, 0.6);
                    break;
                default:
                    log.Completed(name, [0.1, 0.6, 0.8, 0.85, final], 1.0, ReportEvents.MiB);
                    break;
            }
        }
        return log.Finish();
    }

    [Fact]
    public void At_a_thousand_trials_no_finding_grows_with_the_sweep_and_report_md_points_to_the_csv()
    {
        var log = Thousand();
        var a = SweepAnalysis.Compute(log.Fold(), log.Events);
        var findings = SweepReportWriter.Findings(a);

        Assert.All(findings, f => Assert.True(f.Length < 700, $"{f.Length} characters: {f[..Math.Min(f.Length, 200)]}…"));
        Assert.Contains("diverged: 250 trials, t0000 at iteration 150 (loss is NaN); t0004 at iteration 150 (loss is NaN); t0008", findings.Single(f => f.StartsWith("diverged: ", StringComparison.Ordinal)));
        Assert.EndsWith("and 245 more (every one in trials.csv)", findings.Single(f => f.StartsWith("diverged: ", StringComparison.Ordinal)));

        var md = ReportMarkdown.Write(a, []);
        var tableRows = md.Split('\n').SkipWhile(l => !l.StartsWith("| trial | batch |", StringComparison.Ordinal)).Skip(2).TakeWhile(l => l.StartsWith('|')).ToList();
        Assert.Equal(ReportMarkdown.ShownRows, tableRows.Count);
        // The rows shown are the best by best test accuracy, in spec order: the 50 completed trials (i % 4 = 2 or 3) of the highest index.
        var expected = Enumerable.Range(0, 1000).Where(i => i % 4 >= 2).OrderByDescending(i => i).Take(ReportMarkdown.ShownRows).Order().Select(i => $"| t{i:0000} |");
        Assert.Equal(expected, tableRows.Select(r => r[..9]));
        Assert.Contains($"… and {1000 - ReportMarkdown.ShownRows} more trials: every one in [trials.csv](trials.csv).", md);
        Assert.True(md.Length < 60_000, $"report.md is {md.Length} characters");
        Assert.Equal(1001, ReportCsv.Trials(a).Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void What_early_stopping_saved_and_whether_the_best_completed_trial_is_the_sweeps_best()
    {
        var a = SweepAnalysis.Compute(Thousand().Fold(), Thousand().Events);
        // Iterations: 250 diverged at 150 (their iteration reached: 150), 250 stopped at 100, 500 completed at 400.
        long done = 250 * 150 + 250 * 100 + 500 * 400;
        long full = 1000 * 400L;
        // Seconds: 1 per point after iteration 0 (whose 0.1 s times no iteration): diverged 1, stopped 1, completed 4;
        // the stopped trials' 300 remaining iterations at their 1 s per 100 iterations: 3 s each.
        double seconds = 250 * 1.0 + 250 * 1.0 + 500 * 4.0;
        double fullSeconds = seconds + 250 * 3.0;
        var (iterations, fullIterations, spent, all) = a.Compute();
        Assert.Equal((done, full), (iterations, fullIterations));
        Assert.Equal(seconds, spent, 9);
        Assert.Equal(fullSeconds, all!.Value, 9);

        var findings = SweepReportWriter.Findings(a);
        Assert.Contains($"stopped early: 250 of 1000 trials; compute {done} of {full} iterations (66%), {seconds:0} of about {fullSeconds:0} s that every trial to max-iter would have taken", findings);
        Assert.Contains("the best completed trial, t0999 (0.9500), is the best of the sweep: no stopped trial reached its accuracy", findings);
    }

    [Fact]
    public void A_random_search_of_many_batch_sizes_names_five_in_the_memory_finding()
    {
        // Batch sizes 16, 24, …, 104: the reference is the median, 64; every other batch has its own percentage.
        var trials = Enumerable.Range(0, 12).Select(i => ReportEvents.Trial($"r{i}", 16 + 8 * i, 0.01)).ToArray();
        var log = new ReportEvents("many-batches", trials);
        for (int i = 0; i < 12; i++) log.Completed($"r{i}", [0.1, 0.9], 1.0, (100 + i) * ReportEvents.MiB);
        var a = SweepAnalysis.Compute(log.Finish().Fold(), log.Events);
        var memory = SweepReportWriter.Findings(a).Single(f => f.StartsWith("peak memory against ", StringComparison.Ordinal));
        Assert.EndsWith("and 6 more", memory);
        Assert.Equal(5, memory.Split("%").Length - 1);
    }

    [Fact]
    public void A_stopped_trial_that_was_ahead_of_the_best_completed_one_is_named()
    {
        var log = new ReportEvents("ahead", ReportEvents.Trial("done", 64, 0.01, 300), ReportEvents.Trial("cut", 64, 0.02, 300));
        log.Completed("done", [0.1, 0.8, 0.9, 0.93], 1.0, ReportEvents.MiB);
        log.Start("cut").Points("cut", [0.1, 0.95], 1.0, ReportEvents.MiB).StopEarly("cut", 100, 0.95, 0.96);
        var a = SweepAnalysis.Compute(log.Finish().Fold(), log.Events);
        Assert.Contains("the best completed trial, done (0.9300), is not the best of the sweep: cut reached 0.9500 before it was stopped", SweepReportWriter.Findings(a));
        Assert.Contains("stopped early at 100: below the cut-off 0.96", ReportMarkdown.Write(a, []));
    }
}
