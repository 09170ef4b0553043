using System.Text.RegularExpressions;
using Sweep.Orchestrator.Reporting;
using Sweep.Orchestrator.Running;
using Sweep.Protocol.Events;
using Sweep.Orchestrator.Tests.Views;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>
/// Trial names with line breaks, tabs, pipes, HTML and spreadsheet formulas through every writer: the
/// status table, report.md and the CSVs (end to end through `sweep run`: <see cref="ReportEndToEndTests"/>).
/// </summary>
public sealed class HostileNamesTests : IDisposable
{
    private const string Reason = "loss is NaN\n| <b>x</b>";
    private static readonly string[] Names = SafeTextTests.HostileNames;
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-hostile-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    /// <summary>The eight hostile names as trials of 200 iterations; the last one ("+3") diverges at 150 with a reason that has a line break, a pipe and HTML.</summary>
    private static ReportEvents Sweep()
    {
        var definitions = Names.Select((name, i) => ReportEvents.Trial(name, 16 << (i % 3), 0.01 * (1 + i / 3), 200)).ToArray();
        var log = new ReportEvents("hostile", definitions);
        foreach (var name in Names[..^1]) log.Completed(name, [0.1, 0.8, 0.96], 0.5, 50 * ReportEvents.MiB);
        log.Start(Names[^1]).Points(Names[^1], [0.1, 0.97], 0.5, 50 * ReportEvents.MiB).Diverge(Names[^1], 150, Reason);
        return log.Finish();
    }

    [Fact]
    public void Csv_fields_are_quoted_formulas_neutralised_and_names_read_back()
    {
        var log = Sweep();
        var output = SweepReportWriter.Write(SweepAnalysis.Compute(log.Fold(), log.Events), temp);

        string[] expected = ["new\nline", "tab\there", "pipe|name", "<script>alert(1)</script>", "'=1+1", "'@x", "'-2", "'+3"];
        var trials = ReportFiles.CsvRecords(output.TrialsCsv);
        Assert.Equal(expected, trials.Select(t => t["name"]));
        Assert.Equal(Names.Select(n => "id-" + n), trials.Select(t => t["id"]));
        Assert.Equal(Reason, trials[^1]["divergenceReason"]);
        Assert.Equal(["Completed", "Diverged"], trials.Select(t => t["state"]).Distinct());

        var metrics = ReportFiles.CsvRecords(output.MetricsCsv);
        Assert.Equal(expected, metrics.Select(m => m["trial"]).Distinct());
        Assert.Equal(7 * 3 + 2, metrics.Count);

        // In the file itself: every formula-like name is quoted with its quote mark in front, none is bare.
        var raw = File.ReadAllText(output.TrialsCsv);
        foreach (var name in new[] { "=1+1", "@x", "-2", "+3" })
        {
            Assert.Contains($",\"'{name}\",", raw);
            Assert.DoesNotContain($",{name},", raw);
            Assert.DoesNotContain($",\"{name}\",", raw);
        }
    }

    [Fact]
    public void Report_md_keeps_one_row_per_trial_and_renders_html_as_text()
    {
        var log = Sweep();
        var output = SweepReportWriter.Write(SweepAnalysis.Compute(log.Fold(), log.Events), temp);
        var md = File.ReadAllText(output.ReportFile);
        var lines = md.Split('\n');

        // The trials table: the header, the separator, then exactly one row of 16 cells per trial, names first, escaped.
        int header = Array.FindIndex(lines, l => l.StartsWith("| trial | batch | test batch |", StringComparison.Ordinal));
        var headerCells = SafeTextTests.MarkdownCells(lines[header]);
        Assert.Equal(16, headerCells.Count);
        var rows = lines.Skip(header + 2).TakeWhile(l => l.Length > 0).ToList();
        Assert.Equal(Names.Length, rows.Count);
        foreach (var (row, name) in rows.Zip(Names))
        {
            var cells = SafeTextTests.MarkdownCells(row);
            Assert.Equal(headerCells.Count, cells.Count);
            Assert.Equal(SafeText.Markdown(name), cells[0]);
        }
        Assert.Equal("diverged at 150: loss is NaN\\\\n\\| \\<b\\>x\\</b\\>", SafeTextTests.MarkdownCells(rows[^1])[^1]);

        // The time-per-iteration table has 4 cells a row, whatever the names.
        int fit = Array.FindIndex(lines, l => l == "| trial | batch | seconds per iteration | fitted |");
        var fitRows = lines.Skip(fit + 2).TakeWhile(l => l.Length > 0).ToList();
        Assert.Equal(7, fitRows.Count); // the completed trials
        Assert.All(fitRows, r => Assert.Equal(4, SafeTextTests.MarkdownCells(r).Count));

        // No raw HTML anywhere, no line broken by a name, and list items carry the escaped names.
        Assert.Empty(Regex.Matches(md, @"(?<!\\)[<>]"));
        Assert.DoesNotContain("\nline", md);
        Assert.DoesNotContain('\t', md);
        Assert.DoesNotContain('\r', md);
        Assert.Contains("- \\<script\\>alert(1)\\</script\\>: 200 iterations, 1.10 s\n", md);
        Assert.Contains("- pipe\\|name: 200 iterations, 1.10 s\n", md);
        Assert.Contains("- new\\\\nline: 200 iterations, 1.10 s\n", md);
        Assert.Contains("- \\+3 diverged at iteration 150: loss is NaN\\\\n\\| \\<b\\>x\\</b\\>\n", md);
        Assert.Contains("\nNot eligible: \\+3 (diverged at 150).\n", md);
    }

    [Fact]
    public void The_status_table_keeps_one_row_per_trial_with_names_shown_as_escapes()
    {
        var log = Sweep();
        var table = StatusView.Table(log.Fold()).Split(Environment.NewLine);
        // Header, 8 trials, the summary: no slot registered in these events.
        Assert.Equal(1 + Names.Length + 1, table.Length);
        Assert.Equal("sweep hostile (report-test): completed; 7 completed, 1 diverged", table[^1]);
        var rows = table[1..^1];
        foreach (var (row, name) in rows.Zip(Names)) Assert.StartsWith(SafeText.Line(name) + " ", row);
        Assert.StartsWith("new\\nline ", rows[0]);
        Assert.StartsWith("tab\\there ", rows[1]);
        Assert.Contains("  Diverged   1         150/200  0.9700    0.9700  0.50      50        diverged at 150: loss is NaN\\n| <b>x</b>", rows[^1]);
        // Columns line up: "batch" starts at the same column in every row.
        int batch = table[0].IndexOf("batch", StringComparison.Ordinal);
        Assert.All(rows, r => Assert.Equal(' ', r[batch - 1]));
        Assert.All(rows, r => Assert.NotEqual(' ', r[batch]));
        Assert.DoesNotContain(table, l => l.Contains('\t'));
    }
}
