using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Sweep.Orchestrator.Reporting;
using Sweep.Orchestrator.Tests.Views;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>
/// The report and the status table as a user gets them: the real `sweep run` on a synthetic spec, then
/// `sweep status`, report.md and the CSVs read back. The synthetic model's curves are deterministic,
/// so iterations and accuracies are exact; wall-clock seconds are not, and are left out.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class ReportEndToEndTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-report-e2e-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string DataDir => Path.Combine(temp, "data");

    [Fact]
    public void A_trial_that_reached_the_target_and_then_diverged_is_never_best_and_shows_where_it_stopped()
    {
        // The user's spec: blows-up reaches 0.9661 at iteration 10, then its loss turns NaN at 20.
        var spec = Path.Combine(temp, "best.conf");
        File.WriteAllText(spec, """
            sweep {
              name = best
              model = synthetic
              max-iter = 200
              test-interval = 10
              cases = [ { name = stable, batch-size = 64, base-lr = 0.05 }, { name = blows-up, batch-size = 64, base-lr = 0.5 } ]
            }
            """);
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "best", "--data-dir", DataDir, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
        var lines = stdout.Split('\n').Select(l => l.TrimEnd('\r')).ToList();

        // The final table: the diverged trial at the iteration it reached, 20 of 200.
        Assert.Equal(["blows-up", "64", "0.5", "Diverged", "1", "20/200", "0.9723", "0.9723"], Row(lines, "blows-up")[..8]);
        Assert.Equal("diverged at 20: loss is NaN", Row(lines, "blows-up")[^1]);
        Assert.Equal(["stable", "64", "0.05", "Completed", "1", "200/200", "0.9736", "0.9736"], Row(lines, "stable")[..8]);

        // The findings: the fastest to 0.95 is the completed trial, though blows-up got there first (10 iterations against 60).
        Assert.Contains(lines, l => l.StartsWith("  - 2 of 2 trials reach test accuracy 0.95; fastest: stable (60 iterations, ", StringComparison.Ordinal));
        Assert.Contains("  - highest final test accuracy: stable (0.9736)", lines);
        Assert.Contains("  - not eligible as best (only completed trials are): blows-up (diverged at 20)", lines);
        Assert.DoesNotContain(lines, l => l.Contains("fastest: blows-up", StringComparison.Ordinal));

        // report.md says the same, and lists blows-up apart.
        var md = File.ReadAllText(Path.Combine(DataDir, "best", "report", "report.md"));
        Assert.Matches(@"\nBest trial by time to 0\.95: \*\*stable\*\* \(60 iterations, \d+\.\d\d s\)\.\n", md);
        Assert.Contains("\nBest trial by final test accuracy: **stable** (0.9736).\n", md);
        Assert.Contains("\nNot eligible: blows-up (diverged at 20).\n", md);
        Assert.Matches(@"\n- blows-up: 10 iterations, \d+\.\d\d s \(diverged at 20: not eligible as best\)\n", md);
        Assert.Contains("\n- 2 of 2 trials reach test accuracy 0.95; fastest: stable (60 iterations, ", md);
        Assert.DoesNotContain("**blows-up**", md);
        var mdRow = md.Split('\n').Single(l => l.StartsWith("| blows-up |", StringComparison.Ordinal));
        Assert.Equal("20/200", SafeTextTests.MarkdownCells(mdRow)[6]);

        // trials.csv and `sweep status` (table and JSON) agree: iteration 20.
        var csv = ReportFiles.CsvRecords(Path.Combine(DataDir, "best", "report", "trials.csv")).Single(t => t["name"] == "blows-up");
        Assert.Equal(("Diverged", "20", "20"), (csv["state"], csv["iteration"], csv["divergedAtIteration"]));
        var (statusExit, table, _) = SweepProcess.Run("status", "best", "--data-dir", DataDir);
        Assert.Equal(0, statusExit);
        Assert.Equal("20/200", Row(table.Split('\n').ToList(), "blows-up")[5]);
        var (jsonExit, json, _) = SweepProcess.Run("status", "best", "--data-dir", DataDir, "--json");
        Assert.Equal(0, jsonExit);
        var trial = JsonDocument.Parse(json).RootElement.GetProperty("trials").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "blows-up");
        Assert.Equal((20, 20), (trial.GetProperty("iteration").GetInt32(), trial.GetProperty("divergedAtIteration").GetInt32()));
    }

    [Fact]
    public void Printable_hostile_names_from_a_spec_stay_text_in_the_table_the_report_and_the_csvs() =>
        RunHostile("printable", ["pipe|name", "<script>alert(1)</script>", "=1+1", "@x", "-2", "+3"]);

    /// <summary>The spec loader takes quoted names with escapes for line breaks and tabs (HOCON strings): they must not break a line either.</summary>
    [Fact]
    public void Names_with_line_breaks_and_tabs_from_a_spec_stay_on_one_line() =>
        RunHostile("control", ["new\nline", "tab\there", "plain"]);

    /// <summary>
    /// Runs a synthetic sweep whose cases have <paramref name="names"/> (the last one diverges) and checks
    /// every output: progress lines, the final table, `sweep status`, report.md and the CSVs.
    /// </summary>
    private void RunHostile(string id, string[] names)
    {
        var spec = Path.Combine(temp, id + ".conf");
        var cases = names.Select((name, i) => $"{{ name = {Hocon(name)}, batch-size = {16 << (i % 3)}, base-lr = {(i == names.Length - 1 ? "0.5" : (0.01 * (1 + i)).ToString(CultureInfo.InvariantCulture))} }}");
        File.WriteAllText(spec, $$"""
            sweep {
              name = {{Hocon("<i>" + id + "</i> | =x")}}
              model = synthetic
              max-iter = 40
              test-interval = 10
              cases = [
                {{string.Join("\n    ", cases)}}
              ]
            }
            """);
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", id, "--data-dir", DataDir, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
        var lines = stdout.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var shown = names.Select(SafeText.Line).ToList();

        // Progress: one line per start, completion and divergence, each naming its trial as one line.
        Assert.Equal(shown.Order(StringComparer.Ordinal), NamesBefore(lines, ": started attempt 1 on ").Order(StringComparer.Ordinal));
        Assert.Equal(shown[..^1].Order(StringComparer.Ordinal), NamesBefore(lines, ": completed").Order(StringComparer.Ordinal));
        Assert.Equal([shown[^1]], NamesBefore(lines, ": DIVERGED at iteration 20: loss is NaN"));

        // The final table and `sweep status`: a row per trial in spec order, then the slots and the summary.
        AssertTable(lines, shown, id);
        var (statusExit, status, _) = SweepProcess.Run("status", id, "--data-dir", DataDir);
        Assert.Equal(0, statusExit);
        AssertTable(status.Split('\n').Select(l => l.TrimEnd('\r')).ToList(), shown, id);

        // report.md: one table row per trial with all 16 cells, no raw HTML, the sweep's name escaped too.
        var md = File.ReadAllText(Path.Combine(DataDir, id, "report", "report.md"));
        var mdLines = md.Split('\n');
        int header = Array.FindIndex(mdLines, l => l.StartsWith("| trial | batch | test batch |", StringComparison.Ordinal));
        var rows = mdLines.Skip(header + 2).TakeWhile(l => l.Length > 0).ToList();
        Assert.Equal(names.Select(SafeText.Markdown), rows.Select(r => SafeTextTests.MarkdownCells(r)[0]));
        Assert.All(rows, r => Assert.Equal(16, SafeTextTests.MarkdownCells(r).Count));
        Assert.Empty(Regex.Matches(md, @"(?<!\\)[<>]"));
        Assert.Contains($"Sweep {id} (\\<i\\>{id}\\</i\\> \\| =x) from ", md);
        Assert.Contains($"\nNot eligible: {SafeText.Markdown(names[^1])} (diverged at ", md);

        // The CSVs: formulas neutralised, everything else read back exactly.
        var expected = names.Select(n => "=+-@".Contains(n[0]) ? "'" + n : n).ToList();
        Assert.Equal(expected, ReportFiles.CsvRecords(Path.Combine(DataDir, id, "report", "trials.csv")).Select(t => t["name"]));
        Assert.Equal(expected, ReportFiles.CsvRecords(Path.Combine(DataDir, id, "report", "metrics.csv")).Select(m => m["trial"]).Distinct());
    }

    private static void AssertTable(List<string> lines, List<string> shown, string id)
    {
        int header = lines.FindIndex(l => l.StartsWith("trial ", StringComparison.Ordinal) && l.Contains(" batch ", StringComparison.Ordinal));
        Assert.True(header >= 0, string.Join('\n', lines));
        var rows = lines.Skip(header + 1).Take(shown.Count).ToList();
        foreach (var (row, name) in rows.Zip(shown)) Assert.StartsWith(name + "  ", row);
        Assert.StartsWith("slot ", lines[header + 1 + shown.Count]);
        Assert.Equal($"sweep {id} (<i>{id}</i> | =x): completed; {shown.Count - 1} completed, 1 diverged", lines.Skip(header).First(l => l.StartsWith("sweep ", StringComparison.Ordinal)));
    }

    /// <summary>The trial names of the progress lines "HH:mm:ss NAME&lt;marker&gt;…".</summary>
    private static IEnumerable<string> NamesBefore(List<string> lines, string marker) =>
        lines.Where(l => Regex.IsMatch(l, @"^\d\d:\d\d:\d\d ") && l.Contains(marker, StringComparison.Ordinal)).Select(l => l[9..l.IndexOf(marker, StringComparison.Ordinal)]);

    /// <summary>The cells of a status-table row (columns are separated by two spaces or more).</summary>
    private static string[] Row(List<string> lines, string trial) =>
        Regex.Split(lines.Single(l => l.StartsWith(trial + "  ", StringComparison.Ordinal)), " {2,}");

    /// <summary>A HOCON quoted string.</summary>
    private static string Hocon(string text) =>
        "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal) + "\"";
}
