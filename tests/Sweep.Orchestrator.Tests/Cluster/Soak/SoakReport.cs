using System.Globalization;
using System.Text;

namespace Sweep.Orchestrator.Tests.Cluster.Soak;

/// <summary>One of issue 13's targets for the soak: what it asks, what was measured, whether it was met; hard targets are asserted in every run, soft ones when strict.</summary>
public sealed record SoakTarget(string Name, string Measured, bool Hard, bool Met);

/// <summary>The soak's report: its targets checked, and markdown for people (test output, artifacts/soak/report.md).</summary>
public static class SoakReport
{
    /// <summary>At most this share of the trials may be trained twice (soft).</summary>
    public const double TrainedTwiceLimit = 0.01;

    /// <summary>The median hand-over (soft).</summary>
    public static readonly TimeSpan HandOverMedianLimit = TimeSpan.FromSeconds(15);

    /// <summary>The worst hand-over (soft).</summary>
    public static readonly TimeSpan HandOverWorstLimit = TimeSpan.FromSeconds(30);

    /// <summary>The makespan against the ideal of the slots alive (soft).</summary>
    public const double MakespanLimit = 1.5;

    /// <summary>
    /// The targets: hard (0 lost, 0 recorded twice, 0 self-downings, the sweep finished by
    /// <paramref name="deadline"/>) and soft (≤ 1% trained twice, hand-over ≤ 15 s median and ≤ 30 s
    /// worst, makespan ≤ 1.5 × ideal). A soft target with nothing to measure (no kill of the
    /// coordinator's host) is met.
    /// </summary>
    public static IReadOnlyList<SoakTarget> Targets(SoakResult result, DateTimeOffset chaosStart, DateTimeOffset deadline)
    {
        var spread = result.HandOverSpread;
        bool finished = result.FinishedAt is { } at && at <= deadline;
        return
        [
            new("trials lost = 0", $"{result.Lost.Count} of {result.Trials}", Hard: true, result.Lost.Count == 0),
            new("trials recorded twice = 0", Count(result.RecordedTwice.Count), Hard: true, result.RecordedTwice.Count == 0),
            new("self-downings = 0", Count(result.SelfDownings.Count), Hard: true, result.SelfDownings.Count == 0),
            new($"sweep finished by {T(deadline, chaosStart)}", result.FinishedAt is { } end ? $"at {T(end, chaosStart)}" : "no", Hard: true, finished),
            new("trials trained twice ≤ 1%", string.Create(CultureInfo.InvariantCulture, $"{result.TrainedTwice.Count} ({result.TrainedTwiceShare:0.0%})"), Hard: false, result.TrainedTwiceShare <= TrainedTwiceLimit),
            new("hand-over median ≤ 15 s", spread is null ? "no hand-over" : $"{Seconds(spread.Median)} (min {Seconds(spread.Min)}, {spread.Count} hand-over(s))", Hard: false, spread is null || spread.Median <= HandOverMedianLimit),
            new("hand-over worst ≤ 30 s", spread is null ? "no hand-over" : Seconds(spread.Max), Hard: false, spread is null || spread.Max <= HandOverWorstLimit),
            new("makespan ≤ 1.5 × ideal", result.MakespanRatio is { } ratio
                ? string.Create(CultureInfo.InvariantCulture, $"{Seconds(result.Makespan!.Value)} against {Seconds(result.IdealMakespan!.Value)}: {ratio:0.00}×")
                : "not finished", Hard: false, result.MakespanRatio is <= MakespanLimit),
        ];
    }

    /// <summary>The targets missed: the hard ones, and the soft ones too when <paramref name="strict"/>.</summary>
    public static IReadOnlyList<string> Misses(IReadOnlyList<SoakTarget> targets, bool strict) =>
        targets.Where(t => !t.Met && (t.Hard || strict)).Select(t => $"{t.Name}: {t.Measured}").ToList();

    /// <summary>The report in markdown. <paramref name="timeline"/>: what the soak did (kills, replacements, exits), in order.</summary>
    public static string Markdown(SoakSettings settings, SoakResult result, IReadOnlyList<SoakTarget> targets, DateTimeOffset chaosStart, IReadOnlyList<(DateTimeOffset At, string What)> timeline)
    {
        var md = new StringBuilder();
        md.AppendLine("# Cluster chaos soak");
        md.AppendLine();
        md.AppendLine(settings.Summary + ".");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Chaos window opened {chaosStart.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC (t+0, every node up); times below are from it.");
        md.AppendLine();
        md.AppendLine("| target | measured | kind | verdict |");
        md.AppendLine("|---|---|---|---|");
        foreach (var t in targets) md.AppendLine($"| {t.Name} | {t.Measured} | {(t.Hard ? "hard" : "soft")} | {(t.Met ? "met" : "MISSED")} |");
        md.AppendLine();

        md.AppendLine("## Attempts per trial");
        md.AppendLine();
        md.AppendLine("| attempts | trials |");
        md.AppendLine("|---|---|");
        foreach (var (attempts, trials) in result.Attempts) md.AppendLine(CultureInfo.InvariantCulture, $"| {attempts} | {trials} |");
        md.AppendLine();

        md.AppendLine("## Coordinator hand-overs (kill -9 of its host → next trial started)");
        md.AppendLine();
        if (result.HandOvers.Count == 0) md.AppendLine("No kill hit the coordinator's host.");
        foreach (var h in result.HandOvers)
            md.AppendLine($"- {T(h.Kill.At, chaosStart)} {Kind(h.Kill.Kind)} {h.Kill.Node}: {(h.NextTrialStartedAfter is { } after ? Seconds(after) : "no trial started after it")}");
        md.AppendLine();

        md.AppendLine(CultureInfo.InvariantCulture, $"## No coordinator for more than {SoakAnalysis.SilenceThreshold.TotalSeconds:0} s (no event recorded while the sweep was unfinished)");
        md.AppendLine();
        if (result.Silences.Count == 0) md.AppendLine("None.");
        foreach (var s in result.Silences) md.AppendLine($"- {T(s.From, chaosStart)} to {T(s.To, chaosStart)} ({Seconds(s.Length)})");
        md.AppendLine();

        md.AppendLine("## Self-downings (a node not killed that says it was downed)");
        md.AppendLine();
        if (result.SelfDownings.Count == 0) md.AppendLine("None.");
        foreach (var d in result.SelfDownings) md.AppendLine($"- {T(d.At, chaosStart)} {Kind(d.Kind)} {d.Node}: `{d.Line}`");
        md.AppendLine();

        md.AppendLine("## Trials");
        md.AppendLine();
        md.AppendLine($"- trained twice ({result.TrainedTwice.Count}): {List(result.TrainedTwice)}");
        md.AppendLine(CultureInfo.InvariantCulture, $"  - of which an attempt ended on a node killed at most {SoakAnalysis.DiedWithNode.TotalSeconds:0} s after, its result dying with it ({result.TrainedTwiceAsNodeDied.Count}): {List(result.TrainedTwiceAsNodeDied)}");
        md.AppendLine($"- lost ({result.Lost.Count}): {List(result.Lost)}");
        md.AppendLine($"- recorded twice ({result.RecordedTwice.Count}): {List(result.RecordedTwice)}");
        md.AppendLine($"- failed for good ({result.Failed.Count}): {List(result.Failed)}");
        md.AppendLine();

        md.AppendLine("## Timeline");
        md.AppendLine();
        foreach (var (at, what) in timeline) md.AppendLine($"- {T(at, chaosStart)} {what}");
        return md.ToString();
    }

    private static string Kind(SoakNodeKind kind) => kind.ToString().ToLowerInvariant();

    private static string Count(int count) => count.ToString(CultureInfo.InvariantCulture);

    /// <summary>"t+12.3 s" (or "t-4.0 s", before the window opened).</summary>
    private static string T(DateTimeOffset at, DateTimeOffset chaosStart) =>
        at >= chaosStart ? "t+" + Seconds(at - chaosStart) : "t-" + Seconds(chaosStart - at);

    private static string Seconds(TimeSpan span) => string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.0} s");

    private static string List(IReadOnlyList<string> names) =>
        names.Count == 0 ? "none" : string.Join(", ", names.Take(50)) + (names.Count > 50 ? $", … ({names.Count - 50} more)" : "");
}
