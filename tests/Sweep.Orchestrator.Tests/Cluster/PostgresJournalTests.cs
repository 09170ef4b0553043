using System.Text.Json;
using Npgsql;

namespace Sweep.Orchestrator.Tests.Cluster;

/// <summary>The same sweep commands against a real PostgreSQL journal.</summary>
[Collection(ProcessCollection.Name)]
public sealed class PostgresJournalTests(PostgresServer postgres) : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-pg-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    [Fact]
    public void Run_status_resume_watch_and_report_work_against_postgresql_and_the_events_are_in_its_tables()
    {
        var journal = postgres.CreateDatabase();
        var spec = Path.Combine(temp, "s.conf");
        File.WriteAllText(spec, "sweep { name = pg, model = synthetic, max-iter = 40, test-interval = 20, grid { batch-size = [16, 32], base-lr = [0.01] } }");

        var run = SweepProcess.Run("run", spec, "--sweep-id", "on-pg", "--journal", journal, "--data-dir", temp);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);

        var status = SweepProcess.Run("status", "on-pg", "--journal", journal, "--json");
        Assert.True(status.ExitCode == 0, status.Stderr);
        var trials = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("trials").EnumerateArray().ToList();
        Assert.Equal(2, trials.Count);
        Assert.All(trials, t => Assert.Equal("Completed", t.GetProperty("state").GetString()));

        var resume = SweepProcess.Run("resume", "on-pg", "--journal", journal);
        Assert.Equal(0, resume.ExitCode);
        Assert.Contains("0 of 2 trial(s) to run", resume.Stdout);

        var watch = SweepProcess.Run("watch", "on-pg", "--journal", journal);
        Assert.True(watch.ExitCode == 0, watch.Stderr);
        Assert.Contains("2/2 finished, completed", watch.Stdout);
        var reportDir = Path.Combine(temp, "report");
        var report = SweepProcess.Run("report", "on-pg", "--journal", journal, "--out", reportDir);
        Assert.True(report.ExitCode == 0, report.Stderr);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(reportDir, "trials.csv")).Length);

        using var connection = new NpgsqlConnection(journal);
        connection.Open();
        using var count = new NpgsqlCommand("SELECT count(*) FROM journal WHERE persistence_id = 'sweep-on-pg'", connection);
        Assert.True((long)count.ExecuteScalar()! >= 2 + 2 * 3 + 2 + 1, "SweepStarted, 2 × (started, 3 progress, completed), SweepCompleted");
    }
}
