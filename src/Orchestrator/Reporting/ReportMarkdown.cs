using System.Globalization;
using System.Text;
using Sweep.Protocol.Events;
using static Sweep.Orchestrator.Reporting.PaperClaimChecks;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Reporting;

/// <summary>
/// report.md: the summary, the trials table, the figures, the findings with their numbers and, for the
/// paper preset, the verdict on each claim. Every text that comes from outside (sweep and trial names,
/// the spec's path, reasons, errors, slot verdicts) goes through <see cref="SafeText.Markdown"/>, so
/// that it renders as the text it is and tables stay tables.
/// </summary>
public static class ReportMarkdown
{
    /// <summary>The whole of report.md for <paramref name="a"/>, with links to <paramref name="figures"/>.</summary>
    public static string Write(SweepAnalysis a, IReadOnlyList<ReportFigure> figures)
    {
        var md = new StringBuilder();
        string target = F(a.TargetAccuracy);
        string reference = a.Reference is { } r ? Md(r.Name) : "-";
        Line(md, $"# Sweep report: {Md(a.SweepId)}");
        Line(md);
        Line(md, $"Sweep {Md(a.SweepId)} ({Md(a.Name)}) from {Md(a.Source)}: {a.Phase.ToString().ToLowerInvariant()}, started {a.StartedAt:yyyy-MM-dd HH:mm:ss zzz}{(a.FinishedAt is { } end ? $", finished {end:yyyy-MM-dd HH:mm:ss zzz}" : "")}; {a.Trials.Count} trials. " +
                 $"Target test accuracy {target}. Reference trial: {reference} ({a.ReferenceRule}).");
        if (a.Phase != SweepPhase.Completed) Line(md, "The sweep has not finished: unfinished trials' curves are partial.");
        Line(md);

        Line(md, "## Summary");
        Line(md);
        foreach (var finding in SweepReportWriter.Findings(a)) Line(md, $"- {Md(finding)}");
        Line(md);

        Line(md, "## Trials");
        Line(md);
        Line(md, $"| trial | batch | test batch | base lr | state | attempts | iteration | final test acc | best test acc | s/100 it | peak MiB | memory vs {reference} | to {target}: iterations | to {target}: seconds | recommended max-iter | note |");
        Line(md, "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var t in Shown(a.Trials, t => t.Status.BestTestAccuracy))
        {
            var s = t.Status;
            string note = t.State switch
            {
                TrialState.Diverged => $"diverged at {t.Record.DivergedAtIteration}: {t.Record.DivergenceReason}",
                TrialState.Failed => t.Record.Error ?? "failed",
                TrialState.Stopped => $"stopped early at {t.Record.StoppedAtIteration}: {t.Record.StopReason}",
                _ when t.Record.Error is not null => $"last error: {t.Record.Error}",
                _ => "",
            };
            Line(md, "| " + string.Join(" | ", new[]
            {
                Md(t.Name), s.BatchSize.ToString(CultureInfo.InvariantCulture), s.TestBatchSize.ToString(CultureInfo.InvariantCulture), G(s.BaseLr),
                t.State.ToString(), s.Attempts.ToString(CultureInfo.InvariantCulture), $"{s.Iteration}/{s.MaxIter}",
                F(t.FinalTestAccuracy, "0.0000"), F(s.BestTestAccuracy, "0.0000"), F(s.SecondsPer100Iterations, "0.00"),
                s.PeakMemoryBytes > 0 ? F(s.PeakMemoryBytes / 1048576.0, "0") : "-",
                t.MemoryPercentOfReference is { } m ? F(m, "0.0") + "%" : "-",
                t.TimeToTarget?.Iterations.ToString(CultureInfo.InvariantCulture) ?? "not reached",
                t.TimeToTarget is { } time ? F(time.Seconds, "0.00") : "not reached",
                t.RecommendedMaxIter?.ToString(CultureInfo.InvariantCulture) ?? "-",
                Md(note),
            }) + " |");
        }
        More(md, a.Trials.Count, "trials");
        Line(md);
        Line(md, "Data: [trials.csv](trials.csv) (one row per trial), [metrics.csv](metrics.csv) (one row per trial and test point).");
        Line(md);
        if (a.Slots.Count > 0)
        {
            // The numbers above were computed on slots whose arithmetic was checked against float64 first.
            Line(md, "Worker slots (each checked its device's arithmetic against float64 before it took a trial; an unhealthy slot took none):");
            Line(md);
            foreach (var slot in a.Slots)
                Line(md, $"- {Md(slot.Slot.WorkerId)}: {(slot.Health.Healthy ? "healthy" : "**unhealthy**")}: {Md(slot.Health.Summary)}");
            Line(md);
        }

        Line(md, "## Figures");
        Line(md);
        foreach (var figure in figures)
        {
            Line(md, $"### [{figure.Title}]({figure.FileName})");
            Line(md);
            Line(md, figure.Description);
            Line(md);
            Line(md, $"![{figure.Title}]({figure.FileName})");
            Line(md);
        }

        Line(md, "## Findings");
        Line(md);
        TimeFindings(md, a);
        BestFindings(md, a);
        FitFindings(md, a);
        MemoryFindings(md, a);
        DivergenceFindings(md, a);
        CouplingFindings(md, a);
        MaxIterFindings(md, a);
        if (a.IsPaperPreset) ClaimsSection(md, a);
        return md.ToString();
    }

    private static void TimeFindings(StringBuilder md, SweepAnalysis a)
    {
        string target = F(a.TargetAccuracy);
        Line(md, $"### Time to test accuracy {target}");
        Line(md);
        Line(md, $"Iterations and cumulative wall-clock seconds (the `seconds` of every test point up to and including the first at or above {target}).");
        Line(md);
        foreach (var t in Shown(a.Trials, t => t.TimeToTarget is { } reached ? -reached.Seconds : null))
        {
            string time = t.TimeToTarget is { } reached ? $"{reached.Iterations} iterations, {F(reached.Seconds, "0.00")} s" : "not reached";
            Line(md, $"- {Md(t.Name)}: {time}{(t.CanBeBest ? "" : $" ({Md(t.WhyNotEligible)}: not eligible as best)")}");
        }
        More(md, a.Trials.Count, "trials");
        Line(md);
    }

    /// <summary>The best trial by each criterion, completed trials only, and the trials that could not be best.</summary>
    private static void BestFindings(StringBuilder md, SweepAnalysis a)
    {
        string target = F(a.TargetAccuracy);
        Line(md, "### Best trial");
        Line(md);
        Line(md, "Only completed trials can be best, by any criterion: a trial that diverged, failed or has not finished is listed apart, whatever its numbers.");
        Line(md);
        Line(md, a.BestByTimeToTarget is { TimeToTarget: { } best } winner
            ? $"Best trial by time to {target}: **{Md(winner.Name)}** ({best.Iterations} iterations, {F(best.Seconds, "0.00")} s)."
            : a.Trials.Any(t => t.TimeToTarget is not null)
                ? $"No completed trial reached test accuracy {target}."
                : $"No trial reached test accuracy {target}.");
        Line(md);
        Line(md, a.BestByFinalAccuracy is { FinalTestAccuracy: { } final } top
            ? $"Best trial by final test accuracy: **{Md(top.Name)}** ({F(final, "0.0000")})."
            : "No completed trial has a final test accuracy.");
        Line(md);
        if (a.NotEligibleList(NotEligibleListed) is { } others)
        {
            Line(md, $"Not eligible: {Md(others)}.");
            Line(md);
        }
    }

    /// <summary>How many rows a per-trial table or list of report.md shows; a larger sweep shows the top ones and points to the CSV.</summary>
    public const int ShownRows = 50;

    /// <summary>
    /// The rows to show of <paramref name="items"/>: all of them, in their order, up to
    /// <see cref="ShownRows"/>; beyond, the <see cref="ShownRows"/> ranked highest by
    /// <paramref name="rank"/> (unranked last), in their order.
    /// </summary>
    internal static IEnumerable<T> Shown<T>(IReadOnlyList<T> items, Func<T, double?> rank)
    {
        if (items.Count <= ShownRows) return items;
        var top = items.Select((item, i) => (Item: item, Index: i, Rank: rank(item)))
            .OrderByDescending(x => x.Rank.HasValue).ThenByDescending(x => x.Rank ?? 0).ThenBy(x => x.Index)
            .Take(ShownRows).OrderBy(x => x.Index).Select(x => x.Item);
        return top.ToList();
    }

    /// <summary>After a list cut to <see cref="ShownRows"/>: how many more, and where they all are.</summary>
    private static void More(StringBuilder md, int count, string what)
    {
        if (count <= ShownRows) return;
        Line(md);
        Line(md, $"… and {count - ShownRows} more {what}: every one in [trials.csv](trials.csv).");
    }

    /// <summary>How many trials that cannot be best report.md names before it says how many more.</summary>
    private const int NotEligibleListed = ShownRows;

    private static void FitFindings(StringBuilder md, SweepAnalysis a)
    {
        Line(md, "### Time per iteration against batch size");
        Line(md);
        var completed = a.Trials.Where(t => t.State == TrialState.Completed && t.SecondsPerIteration is not null).ToList();
        if (a.SecondsPerIterationFit is { } fit)
        {
            Line(md, $"Least-squares line over the {fit.Count} completed trials: seconds per iteration = **{G(fit.Slope)}** × batch + **{G(fit.Intercept)}**, R² = **{F(fit.RSquared, "0.0000")}**.");
            Line(md);
            Line(md, "| trial | batch | seconds per iteration | fitted |");
            Line(md, "|---|---:|---:|---:|");
            foreach (var t in Shown(completed, t => -Math.Abs(t.SecondsPerIteration!.Value - fit.At(t.BatchSize))))
                Line(md, $"| {Md(t.Name)} | {t.BatchSize} | {G(t.SecondsPerIteration!.Value)} | {G(fit.At(t.BatchSize))} |");
            More(md, completed.Count, "completed trials");
        }
        else
        {
            Line(md, $"No fit: it needs completed trials with at least two batch sizes ({completed.Count} completed with timing).");
        }
        Line(md);
    }

    private static void MemoryFindings(StringBuilder md, SweepAnalysis a)
    {
        Line(md, $"### Peak memory against the reference ({(a.Reference is { } r ? Md(r.Name) : "none")})");
        Line(md);
        Line(md, "Peak memory is the process's peak resident memory on the CPU of the trial's worker process (the runtime, data and model included, and what the allocators keep from earlier trials of that process, up to about 50 MB: a figure can read high, never low, so the findings compare each batch size's smallest reading), device memory on CUDA.");
        Line(md);
        if (a.Reference is null || a.Reference.Record.PeakMemoryBytes <= 0)
        {
            Line(md, "No reference measurement.");
        }
        else
        {
            var measured = a.Trials.Where(t => t.MemoryPercentOfReference is not null).ToList();
            foreach (var t in Shown(measured, t => t.MemoryPercentOfReference))
                Line(md, $"- {Md(t.Name)} (batch {t.BatchSize}): {MiB(t.Record.PeakMemoryBytes)}, {F(t.MemoryPercentOfReference, "0.0")}% of {Md(a.Reference.Name)}");
            More(md, measured.Count, "trials");
        }
        Line(md);
    }

    private static void DivergenceFindings(StringBuilder md, SweepAnalysis a)
    {
        Line(md, "### Divergence");
        Line(md);
        if (a.Divergences.Count == 0) Line(md, "No trial diverged.");
        foreach (var d in Shown(a.Divergences, d => d.Iteration)) Line(md, $"- {Md(d.Trial)} diverged at iteration {d.Iteration}: {Md(d.Reason)}");
        More(md, a.Divergences.Count, "diverged trials");
        Line(md);
    }

    private static void CouplingFindings(StringBuilder md, SweepAnalysis a)
    {
        Line(md, "### Batch size and learning rate");
        Line(md);
        // Every trial of another batch size is a coupling finding unless it is too near the reference's.
        int near = a.Reference is null ? 0 : a.Trials.Count(t => t.BatchSize != a.Reference.BatchSize) - a.Couplings.Count;
        string nearNote = near == 0 ? "" : $" {near} trial(s) with a batch size other than the reference's but within a factor √2 of it are left out: that near, the exponent a rate implies means nothing (a rate 10% off at r = 1.1 reads as k = 1).";
        if (a.Reference is null || a.Couplings.Count == 0)
        {
            Line(md, "No trial has a batch size other than the reference's." + nearNote);
            Line(md);
            return;
        }
        var r = a.Reference;
        string name = Md(r.Name);
        Line(md, $"Each trial with another batch size than {name} (batch {r.BatchSize}, lr {G(r.BaseLr)}) has the ratio r = batch / {r.BatchSize}; its learning rate implies " +
                 $"the exponent k in lr = {G(r.BaseLr)} × r^k. How closely it tracks {name}: the mean absolute difference of test accuracy " +
                 $"per iteration (the same iteration numbers) and per epoch (its iteration i against {name}'s iteration i × r, interpolated, where both have seen as many images); iteration 0 is left out." + nearNote);
        Line(md);
        Line(md, "| trial | batch | r | base lr | k | per iteration: mean abs. diff (points) | per epoch: mean abs. diff (points) |");
        Line(md, "|---|---:|---:|---:|---:|---:|---:|");
        foreach (var c in Shown(a.Couplings, c => c.PerIterationMad is { } mad ? -mad : null))
        {
            Line(md, $"| {Md(c.Trial)}{(c.State == TrialState.Completed ? "" : $" ({c.State.ToString().ToLowerInvariant()})")} | {c.BatchSize} | {G(c.Ratio)} | {G(c.BaseLr)} | {F(c.Exponent, "0.##")} | " +
                     $"{F(c.PerIterationMad, "0.0000")} ({c.PerIterationPoints}) | {F(c.PerEpochMad, "0.0000")} ({c.PerEpochPoints}) |");
        }
        More(md, a.Couplings.Count, "trials");
        Line(md);
        if (a.CouplingByExponent.Count > 0)
        {
            Line(md, "By exponent (completed trials only):");
            Line(md);
            foreach (var s in Shown(a.CouplingByExponent, s => s.MeanPerIterationMad is { } mad ? -mad : null))
                Line(md, $"- k = {F(s.Exponent, "0.##")} ({Md(SweepAnalysis.Listed(s.Trials, SweepReportWriter.Listed))}): per iteration {F(s.MeanPerIterationMad, "0.0000")}, per epoch {F(s.MeanPerEpochMad, "0.0000")}");
            More(md, a.CouplingByExponent.Count, "exponents");
            Line(md);
        }
        Line(md, $"Closest coupling: {Md(CouplingVerdict(a))}. The paper claims k = −1 tracks per iteration (CASE6 against CASE1); the linear scaling rule, k = 1, is a per-epoch rule, which is why the per-epoch comparison scales iterations by r.");
        Line(md);
    }

    internal static string CouplingVerdict(SweepAnalysis a)
    {
        if (a.Reference is null) return "no reference trial";
        string perIteration = a.BestPerIteration is { } i
            ? $"per iteration, k = {F(i.Exponent, "0.##")} tracks {a.Reference.Name} best ({SweepAnalysis.Listed(i.Trials, SweepReportWriter.Listed)}; mean abs. diff {F(i.MeanPerIterationMad, "0.0000")})"
            : "per iteration, no trial shares test points with the reference";
        string perEpoch = a.BestPerEpoch is { } e
            ? $"per epoch, k = {F(e.Exponent, "0.##")} ({SweepAnalysis.Listed(e.Trials, SweepReportWriter.Listed)}; {F(e.MeanPerEpochMad, "0.0000")})"
            : "per epoch, none";
        return $"{perIteration}; {perEpoch}";
    }

    private static void MaxIterFindings(StringBuilder md, SweepAnalysis a)
    {
        Line(md, "### Recommended max-iter");
        Line(md);
        Line(md, $"The first test point at which test accuracy reaches {F(100 * TrialAnalysis.PlateauShare, "0")}% of the trial's plateau (the mean of its last two test points); completed trials only.");
        Line(md);
        foreach (var t in Shown(a.Trials, t => t.PlateauAccuracy))
        {
            Line(md, t.RecommendedMaxIter is { } it
                ? $"- {Md(t.Name)}: {it} (plateau {F(t.PlateauAccuracy, "0.0000")}{(t.SecondsPerIteration is { } s ? $", about {F(it * s, "0.0")} s at {G(s)} s per iteration" : "")})"
                : $"- {Md(t.Name)}: - ({t.State.ToString().ToLowerInvariant()})");
        }
        More(md, a.Trials.Count, "trials");
        Line(md);
    }

    private static void ClaimsSection(StringBuilder md, SweepAnalysis a)
    {
        Line(md, "## The paper's claims");
        Line(md);
        var c1 = a["CASE1"]!;
        Line(md, "Each claim of the paper (claims 1–9 of the summary) is checked by the rule beside it: **reproduced** when every part of the rule holds, " +
                 "**not reproduced** when a part fails, **not checkable here** when nothing fails but a part could not be evaluated. \"About 0.95\" is the paper's 0.95 " +
                 "whatever the target accuracy option says." + (c1.MaxIter != 1000 ? $" This run trained {c1.MaxIter} iterations per trial, the paper 1,000." : ""));
        Line(md);
        Line(md, "| # | claim | verdict | rule | numbers |");
        Line(md, "|---:|---|---|---|---|");
        foreach (var claim in a.PaperClaims)
            Line(md, $"| {claim.Number} | {Md(claim.Claim)} | **{Verdict(claim.Verdict)}** | {Md(claim.Rule)} | {Md(claim.Evidence)} |");
        Line(md);
    }

    /// <summary>A verdict as report.md and the findings say it.</summary>
    public static string Verdict(ClaimVerdict verdict) => verdict switch
    {
        ClaimVerdict.Reproduced => "reproduced",
        ClaimVerdict.NotReproduced => "not reproduced",
        _ => "not checkable here",
    };

    private static string Md(string? text) => SafeText.Markdown(text);

    private static void Line(StringBuilder md, string text = "") => md.Append(text).Append('\n');
}
