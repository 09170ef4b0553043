using System.CommandLine;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Reporting;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Cli;

/// <summary>`sweep report ID [--out DIR]`: the study's figures and findings from a sweep's persisted events.</summary>
public static class ReportCommand
{
    public static Command Create(TextWriter output)
    {
        var sweepId = new Argument<string>("ID") { Description = "The sweep to report on (see 'sweep status')." };
        var outDir = new Option<string?>("--out") { Description = "Where to write report.md, the CSV files and the figures [default: DATA-DIR/ID/report]." };
        var journalOptions = new SweepCommands.JournalOptions();
        var target = new Option<double>("--target-accuracy")
        {
            Description = "The test accuracy whose time to reach is reported.",
            DefaultValueFactory = _ => SweepAnalysis.DefaultTargetAccuracy,
        };
        var command = new Command("report", "Write a sweep's report: report.md with the findings (and the paper's claims for its preset), trials.csv, metrics.csv and the figures.")
        {
            sweepId, outDir, target,
        };
        journalOptions.AddTo(command);
        command.SetAction(async (parsed, _) =>
        {
            var id = parsed.GetValue(sweepId)!;
            SweepCommands.RequireValidId(id);
            double targetAccuracy = parsed.GetValue(target);
            if (!(targetAccuracy > 0 && targetAccuracy <= 1)) throw new InvalidInputException($"--target-accuracy must be in (0, 1], got {targetAccuracy}");
            var journal = journalOptions.ReadExisting(parsed);

            var analysis = await SweepReportWriter.AnalyseAsync(journal, id, targetAccuracy);
            var directory = parsed.GetValue(outDir) ?? Path.Combine(journal.DataDirectory, id, "report");
            var written = SweepReportWriter.Write(analysis, directory);
            SweepReportWriter.Print(written, id, output);
            return SweepCommandLine.ExitOk;
        });
        return command;
    }
}
