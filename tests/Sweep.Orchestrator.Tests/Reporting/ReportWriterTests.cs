using System.Globalization;
using Sweep.Orchestrator.Reporting;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>The report's files for hand-made sweeps: CSVs that parse back, real PNG figures, report.md with the findings.</summary>
public sealed class ReportWriterTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-report-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    [Fact]
    public void Writes_csvs_figures_and_report_for_a_generic_sweep()
    {
        var log = ReportEvents.SmallSweep();
        var analysis = SweepAnalysis.Compute(log.Fold(), log.Events);
        var dir = Path.Combine(temp, "nested", "report");
        var output = SweepReportWriter.Write(analysis, dir);
        Assert.Equal(dir, output.Directory);

        var trials = ReportFiles.CsvRecords(Path.Combine(dir, "trials.csv"));
        Assert.Equal(4, trials.Count);
        Assert.Equal(["id", "name", "batchSize", "testBatchSize", "baseLr", "maxIter", "state", "attempts", "iteration", "finalTestAccuracy",
            "bestTestAccuracy", "secondsPer100Iterations", "peakMemoryBytes", "divergedAtIteration", "divergenceReason", "error", "finishedAt"],
            ReportFiles.ParseCsv(File.ReadAllText(Path.Combine(dir, "trials.csv")))[0]);
        var b64 = trials.Single(t => t["name"] == "b64");
        Assert.Equal(("id-b64", "64", "128", "0.01", "500", "Completed", "1", "500"), (b64["id"], b64["batchSize"], b64["testBatchSize"], b64["baseLr"], b64["maxIter"], b64["state"], b64["attempts"], b64["iteration"]));
        Assert.Equal(0.97, double.Parse(b64["finalTestAccuracy"], CultureInfo.InvariantCulture));
        Assert.Equal(0.74, double.Parse(b64["secondsPer100Iterations"], CultureInfo.InvariantCulture), 9);
        Assert.Equal((72 * ReportEvents.MiB).ToString(CultureInfo.InvariantCulture), b64["peakMemoryBytes"]);
        Assert.Equal("", b64["divergedAtIteration"]);
        Assert.Equal(DateTimeOffset.Parse(b64["finishedAt"], CultureInfo.InvariantCulture), log.Fold()[log.Id("b64")].FinishedAt);
        var hot = trials.Single(t => t["name"] == "b64-hot");
        Assert.Equal(("Diverged", "37", "training loss is not finite, \"NaN\"", "0.1"), (hot["state"], hot["divergedAtIteration"], hot["divergenceReason"], hot["finalTestAccuracy"]));
        Assert.Equal("worker lost, \"w1\"", trials.Single(t => t["name"] == "b128")["error"]);

        var metrics = ReportFiles.CsvRecords(Path.Combine(dir, "metrics.csv"));
        Assert.Equal(6 + 6 + 6 + 1, metrics.Count);
        Assert.Equal(["trial", "iteration", "trainLoss", "trainAccuracy", "testLoss", "testAccuracy", "learningRate", "seconds", "peakMemoryBytes"], metrics[0].Keys);
        var b128 = metrics.Where(m => m["trial"] == "b128").ToList();
        Assert.Equal(["0", "100", "200", "300", "400", "500"], b128.Select(m => m["iteration"]));
        Assert.Equal("0.97", b128[3]["testAccuracy"]);
        Assert.Equal("1.38", b128[3]["seconds"]);

        var names = output.Figures.Select(f => f.FileName).ToList();
        Assert.Equal(
        [
            "fig2-train-accuracy.png", "fig3-seconds-per-100.png",
            "fig4-6-test-accuracy-lr0.01.png", // b64 and b128 share lr 0.01
            "fig4-6-test-accuracy-b64.png", // b64 and b64-hot share batch 64
            "fig7-peak-memory.png", "test-accuracy-vs-time.png",
            // batch (32 to 128) and base lr (b64-hot's) vary among the finished trials.
            "compare-final-vs-batch.png", "compare-final-vs-base-lr.png", "compare-parallel-coordinates.png",
        ], names);
        foreach (var name in names)
        {
            var path = Path.Combine(dir, name);
            Assert.Equal((800, 500), ReportFiles.PngSize(path));
            Assert.True(new FileInfo(path).Length > 8_000, $"{name} is {new FileInfo(path).Length} bytes: blank?");
        }

        var md = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.Contains("# Sweep report: small", md);
        Assert.Contains("Best trial by time to 0.95: **b32** (400 iterations, 1.78 s).", md);
        Assert.Contains("seconds per iteration = **0.0001** × batch + **0.001**, R² = **1.0000**", md);
        Assert.Contains("- b128 (batch 128): 104 MiB, 144.4% of b64", md);
        Assert.Contains("- b64-hot diverged at iteration 37: training loss is not finite, \"NaN\"", md);
        Assert.Contains("Closest coupling: per iteration, k = 0 tracks b64 best (b128; mean abs. diff 0.0280)", md);
        Assert.Contains("| b32 | 32 | 0.5 | 0.005 | 1 | 0.0380 (5) | 0.0950 (5) |", md); // batch, r, lr, k, per iteration, per epoch
        Assert.Contains("- b32: 400 (plateau 0.9650", md);
        Assert.Contains("![Fig. 2: training accuracy vs iteration](fig2-train-accuracy.png)", md);
        Assert.Contains("[trials.csv](trials.csv)", md);
        Assert.DoesNotContain("paper's claims", md);
        foreach (var name in names) Assert.Contains($"]({name})", md);

        Assert.Contains(output.Findings, f => f == "3 of 4 trials reach test accuracy 0.95; fastest: b32 (400 iterations, 1.78 s)");
        Assert.Contains(output.Findings, f => f == "seconds per iteration = 0.0001 x batch + 0.001 (R² = 1.000, 3 completed trials)");
        Assert.Contains(output.Findings, f => f == "peak memory against b64 (batch 64): batch 32 77.8%, batch 128 144.4%");
        Assert.Contains(output.Findings, f => f == "diverged: b64-hot at iteration 37 (training loss is not finite, \"NaN\")");
        Assert.Contains(output.Findings, f => f == "recommended max-iter (99% of plateau): b32 400, b64 400, b128 400");

        // Written again into the same folder: overwritten, not appended.
        SweepReportWriter.Write(analysis, dir);
        Assert.Equal(19, ReportFiles.CsvRecords(Path.Combine(dir, "metrics.csv")).Count);
    }

    [Fact]
    public void The_paper_preset_gets_the_papers_figure_groups_and_the_claims_table()
    {
        var log = ReportEvents.PaperSweep();
        var analysis = SweepAnalysis.Compute(log.Fold(), log.Events);
        var output = SweepReportWriter.Write(analysis, temp);
        Assert.Equal(
        [
            "fig2-train-accuracy.png", "fig3-seconds-per-100.png", "fig4-batch.png", "fig5-lr.png", "fig6-coupled.png", "fig7-peak-memory.png", "test-accuracy-vs-time.png",
            "compare-final-vs-batch.png", "compare-final-vs-base-lr.png", "compare-parallel-coordinates.png",
        ], output.Figures.Select(f => f.FileName));
        Assert.Equal(["CASE1", "CASE2", "CASE3"], ReportFigures.TestAccuracyGroups(analysis)[0].Trials.Select(t => t.Name));
        Assert.Equal(["CASE1", "CASE4", "CASE5", "CASE7", "CASE8"], ReportFigures.TestAccuracyGroups(analysis)[1].Trials.Select(t => t.Name));
        Assert.Equal(["CASE1", "CASE6", "CASE9"], ReportFigures.TestAccuracyGroups(analysis)[2].Trials.Select(t => t.Name));
        foreach (var figure in output.Figures) Assert.Equal((800, 500), ReportFiles.PngSize(Path.Combine(temp, figure.FileName)));

        var md = File.ReadAllText(output.ReportFile);
        Assert.Contains("## The paper's claims", md);
        for (int claim = 1; claim <= 9; claim++) Assert.Contains($"\n| {claim} | ", md);
        Assert.Equal(9, md.Split("| **reproduced** |").Length - 1);
        Assert.Contains("paper claims: 9 reproduced (1, 2, 3, 4, 5, 6, 7, 8, 9)", output.Findings);
        Assert.Equal(9, ReportFiles.CsvRecords(output.TrialsCsv).Count);
        Assert.Equal(8 * 11 + 1, ReportFiles.CsvRecords(output.MetricsCsv).Count);
    }
}
