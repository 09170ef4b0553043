using System.Globalization;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol;
using static Sweep.Orchestrator.Reporting.PaperClaimChecks;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Reporting;

/// <summary>What `sweep report` wrote: the folder, its files and the short list of findings.</summary>
public sealed record ReportOutput(string Directory, string ReportFile, string TrialsCsv, string MetricsCsv, IReadOnlyList<ReportFigure> Figures, IReadOnlyList<string> Findings);

/// <summary>
/// `sweep report`: reads a sweep's events back from the journal, analyses them (<see cref="SweepAnalysis"/>)
/// and writes report.md, trials.csv, metrics.csv and the figures into one folder.
/// </summary>
public static class SweepReportWriter
{
    /// <summary>The report's markdown file.</summary>
    public const string ReportFileName = "report.md";

    /// <summary>The CSV with a row per trial.</summary>
    public const string TrialsFileName = "trials.csv";

    /// <summary>The CSV with a row per trial and test point.</summary>
    public const string MetricsFileName = "metrics.csv";

    /// <summary>How many trials that cannot be best a finding names before it says how many more.</summary>
    public const int NotEligibleListed = 10;

    /// <summary>How many trials a finding names before it says how many more.</summary>
    public const int Listed = 5;

    /// <summary>Reads sweep <paramref name="sweepId"/> from <paramref name="journal"/> and analyses it; an unknown sweep is bad input.</summary>
    /// <exception cref="JournalUnavailableException">The journal could not be read.</exception>
    public static async Task<SweepAnalysis> AnalyseAsync(JournalSettings journal, string sweepId, double targetAccuracy = SweepAnalysis.DefaultTargetAccuracy)
    {
        var state = await SweepJournal.ReadAsync(journal, sweepId) ?? throw new InvalidInputException($"no sweep '{sweepId}' in {journal.Description}");
        var events = await SweepJournal.EventsAsync(journal, sweepId);
        return SweepAnalysis.Compute(state, events, targetAccuracy);
    }

    /// <summary>Writes the whole report into <paramref name="directory"/> (created if needed; files overwritten).</summary>
    public static ReportOutput Write(SweepAnalysis analysis, string directory)
    {
        directory = Path.GetFullPath(directory);
        Directory.CreateDirectory(directory);
        var trials = Path.Combine(directory, TrialsFileName);
        var metrics = Path.Combine(directory, MetricsFileName);
        var report = Path.Combine(directory, ReportFileName);
        File.WriteAllText(trials, ReportCsv.Trials(analysis));
        File.WriteAllText(metrics, ReportCsv.Metrics(analysis));
        var figures = ReportFigures.Write(analysis, directory);
        File.WriteAllText(report, ReportMarkdown.Write(analysis, figures));
        return new ReportOutput(directory, report, trials, metrics, figures, Findings(analysis));
    }

    /// <summary>What was written and the findings, as `sweep report` prints them (names through <see cref="SafeText.Line"/>).</summary>
    public static void Print(ReportOutput output, string sweepId, TextWriter writer)
    {
        writer.WriteLine($"report for sweep {SafeText.Line(sweepId)}: {output.ReportFile}");
        writer.WriteLine($"  with {TrialsFileName}, {MetricsFileName} and {output.Figures.Count} figures in {output.Directory}");
        if (!ReportFigures.HasFont) writer.WriteLine("  note: no font found under /usr/share/fonts, so the figures have no text (apt-get install fonts-dejavu-core)");
        writer.WriteLine("findings:");
        foreach (var finding in output.Findings) writer.WriteLine($"  - {SafeText.Line(finding)}");
    }

    /// <summary>
    /// The best trial in one line: its parameters (batch size, base learning rate, then any named
    /// parameter) and how far ahead of the runner-up (the next completed trial by final test
    /// accuracy) it is, in percentage points: "best trial CASE1: batch 64, base lr 0.01; 0.35 points
    /// ahead of CASE4 (0.9805)".
    /// </summary>
    private static string BestTrial(SweepAnalysis a, TrialAnalysis best, double final)
    {
        var spec = best.Record.Definition.Spec;
        string parameters = $"batch {spec.BatchSize}, base lr {G(spec.BaseLr)}" +
                            string.Concat(spec.Parameters?.Items.Select(p => $", {p.Name} {p.Value.Text}") ?? []);
        var second = a.Trials.Where(t => t.CanBeBest && t != best && t.FinalTestAccuracy is not null)
            .OrderByDescending(t => t.FinalTestAccuracy).FirstOrDefault();
        string lead = second is { FinalTestAccuracy: { } next }
            ? $"{F(100 * (final - next), "0.00")} points ahead of {second.Name} ({F(next, "0.0000")})"
            : "the only completed trial";
        return $"best trial {best.Name}: {parameters}; {lead}";
    }

    /// <summary>
    /// The short list of findings: time to target and the best trials (completed ones only, the others
    /// named apart), the time fit, memory, divergence, coupling, max-iter, and the paper's claims. Plain
    /// text with names as they are: each output escapes them its own way.
    /// </summary>
    public static IReadOnlyList<string> Findings(SweepAnalysis a)
    {
        var findings = new List<string>();
        string target = F(a.TargetAccuracy);
        int reached = a.Trials.Count(t => t.TimeToTarget is not null);
        findings.Add(a.BestByTimeToTarget is { TimeToTarget: { } best } winner
            ? $"{reached} of {a.Trials.Count} trials reach test accuracy {target}; fastest: {winner.Name} ({best.Iterations} iterations, {F(best.Seconds, "0.00")} s)"
            : reached > 0
                ? $"{reached} of {a.Trials.Count} trials reach test accuracy {target}, none of them completed: no fastest trial"
                : $"no trial reaches test accuracy {target}");
        if (a.BestByFinalAccuracy is { FinalTestAccuracy: { } final } top)
        {
            findings.Add($"highest final test accuracy: {top.Name} ({F(final, "0.0000")})");
            findings.Add(BestTrial(a, top, final));
        }
        if (a.NotEligibleList(NotEligibleListed) is { } others)
            findings.Add($"not eligible as best (only completed trials are): {others}");

        findings.Add(a.SecondsPerIterationFit is { } fit
            ? $"seconds per iteration = {G(fit.Slope)} x batch + {G(fit.Intercept)} (R² = {F(fit.RSquared, "0.000")}, {fit.Count} completed trials)"
            : "no time fit: fewer than two batch sizes completed");

        if (a.Reference is { Record.PeakMemoryBytes: > 0 } reference)
        {
            var byBatch = a.Trials
                .Where(t => t.BatchSize != reference.BatchSize && t.MemoryPercentOfReference is not null)
                .GroupBy(t => t.BatchSize)
                .OrderBy(g => g.Key)
                // The smallest reading of each batch size: what a worker process keeps from earlier trials only raises a figure.
                .Select(g => $"batch {g.Key} {F(g.Min(t => t.MemoryPercentOfReference!.Value), "0.#")}%")
                .ToList();
            findings.Add(byBatch.Count > 0
                ? $"peak memory against {reference.Name} (batch {reference.BatchSize}): {SweepAnalysis.Listed(byBatch, Listed)}"
                : $"peak memory: no other batch size than {reference.Name}'s to compare");
        }

        findings.Add(a.Divergences.Count == 0
            ? "no trial diverged"
            : $"diverged: {(a.Divergences.Count > Listed ? $"{a.Divergences.Count} trials, " : "")}" +
              SweepAnalysis.Listed(a.Divergences.Select(d => $"{d.Trial} at iteration {d.Iteration} ({d.Reason})").ToList(), Listed, "; ") +
              (a.Divergences.Count > Listed ? " (every one in trials.csv)" : ""));

        if (a.Stopped.Count > 0)
        {
            var (done, full, seconds, fullSeconds) = a.Compute();
            findings.Add($"stopped early: {a.Stopped.Count} of {a.Trials.Count} trials; compute {done} of {full} iterations ({F(100.0 * done / full, "0")}%)" +
                         (fullSeconds is { } all ? $", {F(seconds, "0")} of about {F(all, "0")} s" : "") + " that every trial to max-iter would have taken");
            if (a.BestByFinalAccuracy is { FinalTestAccuracy: { } bestFinal } bestCompleted)
            {
                var beaten = a.Stopped.Where(t => t.MaxTestAccuracy > bestFinal).OrderByDescending(t => t.MaxTestAccuracy).ToList();
                findings.Add(beaten.Count == 0
                    ? $"the best completed trial, {bestCompleted.Name} ({F(bestFinal, "0.0000")}), is the best of the sweep: no stopped trial reached its accuracy"
                    : $"the best completed trial, {bestCompleted.Name} ({F(bestFinal, "0.0000")}), is not the best of the sweep: " +
                      SweepAnalysis.Listed(beaten.Select(t => $"{t.Name} reached {F(t.MaxTestAccuracy!.Value, "0.0000")} before it was stopped").ToList(), Listed));
            }
        }

        if (a.Couplings.Count > 0) findings.Add($"closest coupling: {ReportMarkdown.CouplingVerdict(a)}");

        var recommended = a.Trials.Where(t => t.RecommendedMaxIter is not null).ToList();
        if (recommended.Count > 0)
        {
            findings.Add(recommended.Count <= 10
                ? $"recommended max-iter (99% of plateau): {string.Join(", ", recommended.Select(t => $"{t.Name} {t.RecommendedMaxIter}"))}"
                : $"recommended max-iter (99% of plateau): {recommended.Min(t => t.RecommendedMaxIter)} to {recommended.Max(t => t.RecommendedMaxIter)} over {recommended.Count} completed trials");
        }

        if (a.IsPaperPreset)
        {
            var parts = Enum.GetValues<ClaimVerdict>()
                .Select(v => (Verdict: v, Numbers: a.PaperClaims.Where(c => c.Verdict == v).Select(c => c.Number.ToString(CultureInfo.InvariantCulture)).ToList()))
                .Where(x => x.Numbers.Count > 0)
                .Select(x => $"{x.Numbers.Count} {ReportMarkdown.Verdict(x.Verdict)} ({string.Join(", ", x.Numbers)})");
            findings.Add($"paper claims: {string.Join(", ", parts)}");
        }
        return findings;
    }
}
