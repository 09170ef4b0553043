using System.CommandLine;
using Akka.Actor;
using Akka.Persistence;
using Sweep.Orchestrator.Cli;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Protocol;
using Sweep.Protocol.Events;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>`sweep report` on a real SQLite journal holding hand-made events, through the command itself.</summary>
[Collection(ProcessCollection.Name)]
public sealed class ReportCommandTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-report-cmd-").FullName;

    private string DataDir => Path.Combine(temp, "data");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    [Fact]
    public async Task Reports_a_sweep_from_the_journal_into_the_data_dir_by_default()
    {
        var log = ReportEvents.SmallSweep("small-sweep");
        await Persist(log);

        var (exit, stdout) = await Report("report", "small-sweep", "--data-dir", DataDir);
        Assert.Equal(0, exit);
        var dir = Path.Combine(DataDir, "small-sweep", "report");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal($"report for sweep small-sweep: {Path.Combine(dir, "report.md")}", lines[0]);
        Assert.Equal($"with trials.csv, metrics.csv and 9 figures in {dir}", lines[1]);
        Assert.Contains("- 3 of 4 trials reach test accuracy 0.95; fastest: b32 (400 iterations, 1.78 s)", lines);
        Assert.Contains("- diverged: b64-hot at iteration 37 (training loss is not finite, \"NaN\")", lines);
        Assert.Contains("- seconds per iteration = 0.0001 x batch + 0.001 (R² = 1.000, 3 completed trials)", lines);

        Assert.Equal(4, ReportFiles.CsvRecords(Path.Combine(dir, "trials.csv")).Count);
        Assert.Equal(19, ReportFiles.CsvRecords(Path.Combine(dir, "metrics.csv")).Count);
        Assert.Equal((800, 500), ReportFiles.PngSize(Path.Combine(dir, "fig2-train-accuracy.png")));
        Assert.Contains("Best trial by time to 0.95: **b32**", File.ReadAllText(Path.Combine(dir, "report.md")));
    }

    [Fact]
    public async Task Reports_the_paper_preset_into_out_with_another_target()
    {
        await Persist(ReportEvents.PaperSweep("paper-run"));
        var journalFile = Path.Combine(DataDir, "journal.db");
        var outDir = Path.Combine(temp, "out");

        var (exit, stdout) = await Report("report", "paper-run", "--journal", journalFile, "--out", outDir, "--target-accuracy", "0.97");
        Assert.Equal(0, exit);
        Assert.Contains("paper claims: 9 reproduced (1, 2, 3, 4, 5, 6, 7, 8, 9)", stdout);
        Assert.Contains("reach test accuracy 0.97; fastest: CASE6 (600 iterations, 2.14 s)", stdout);
        foreach (var figure in new[] { "fig4-batch.png", "fig5-lr.png", "fig6-coupled.png" })
            Assert.Equal((800, 500), ReportFiles.PngSize(Path.Combine(outDir, figure)));
        Assert.Contains("Target test accuracy 0.97.", File.ReadAllText(Path.Combine(outDir, "report.md")));
    }

    [Fact]
    public async Task An_unknown_sweep_is_bad_input_in_one_line()
    {
        await Persist(ReportEvents.SmallSweep("present"));
        var error = await Assert.ThrowsAsync<InvalidInputException>(() => Report("report", "absent", "--data-dir", DataDir));
        Assert.Equal($"no sweep 'absent' in {Path.Combine(DataDir, "journal.db")}", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        Assert.False(Directory.Exists(Path.Combine(DataDir, "absent")));

        var noJournal = await Assert.ThrowsAsync<InvalidInputException>(() => Report("report", "present", "--data-dir", Path.Combine(temp, "empty")));
        Assert.Contains("no journal here", noJournal.Message);
        var badTarget = await Assert.ThrowsAsync<InvalidInputException>(() => Report("report", "present", "--data-dir", DataDir, "--target-accuracy", "1.5"));
        Assert.Contains("--target-accuracy", badTarget.Message);
    }

    /// <summary>
    /// Runs `report` as the `sweep` program does: a parse error or an <see cref="InvalidInputException"/> is what
    /// SweepCommandLine turns into one line on stderr and exit code 2, so the exception is left to propagate here.
    /// </summary>
    private static async Task<(int Exit, string Stdout)> Report(params string[] args)
    {
        var output = new StringWriter();
        var parsed = new RootCommand { ReportCommand.Create(output) }.Parse(args);
        Assert.Empty(parsed.Errors);
        int exit = await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = output, EnableDefaultExceptionHandler = false });
        return (exit, output.ToString());
    }

    /// <summary>Writes the events into DATA-DIR/journal.db under the sweep's persistence id, as the coordinator would have.</summary>
    private async Task Persist(ReportEvents log)
    {
        await using var system = await SweepSystem.StartAsync(new JournalSettings(DataDir));
        var writer = system.System.ActorOf(Props.Create(() => new EventWriter(SweepCoordinator.PersistenceIdFor(log.SweepId), log.Events)));
        Assert.Equal("written", await writer.Ask<string>("write", TimeSpan.FromSeconds(30)));
    }

    private sealed class EventWriter : ReceivePersistentActor
    {
        public EventWriter(string persistenceId, IReadOnlyList<ISweepEvent> events)
        {
            PersistenceId = persistenceId;
            Command<string>(_ =>
            {
                var asker = Sender;
                PersistAll(events, _ => { });
                DeferAsync("written", done => asker.Tell(done));
            });
        }

        public override string PersistenceId { get; }
    }
}
