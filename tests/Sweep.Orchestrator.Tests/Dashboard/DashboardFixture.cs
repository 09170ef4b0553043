using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Data.Sqlite;
using Sweep.Orchestrator.Dashboard;
using Sweep.Orchestrator.Hosting;

namespace Sweep.Orchestrator.Tests.Dashboard;

/// <summary>A small synthetic sweep run to its end by the real `sweep run` (journal, logs and report), and the dashboard on a test server over it.</summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string SweepId = "dash";

    private readonly string temp = Directory.CreateTempSubdirectory("sweep-dashboard-").FullName;
    private WebApplication? app;

    public string DataDir => Path.Combine(temp, "data");

    public JournalSettings Journal => new(DataDir);

    public HttpClient Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var spec = Path.Combine(temp, "dash.conf");
        File.WriteAllText(spec, """
            sweep {
              name = dash
              model = synthetic
              max-iter = 100
              test-interval = 20
              grid { batch-size = [16, 32], base-lr = [0.01, 0.02] }
              synthetic { iteration-ms = 2 }
            }
            """);
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", SweepId, "--data-dir", DataDir, "--workers", "2");
        if (exit != 0) throw new InvalidOperationException($"sweep run exited {exit}\n{stdout}\n{stderr}");
        app = DashboardServer.Build(Journal, builder => builder.WebHost.UseTestServer());
        await app.StartAsync();
        Client = app.GetTestClient();
    }

    /// <summary>Rows in every table of the SQLite journal, read with a read-only connection.</summary>
    public IReadOnlyDictionary<string, long> RowCounts()
    {
        using var connection = new SqliteConnection($"Data Source={Journal.JournalFile};Mode=ReadOnly;Pooling=False");
        connection.Open();
        var tables = new List<string>();
        using (var list = connection.CreateCommand())
        {
            list.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table'";
            using var reader = list.ExecuteReader();
            while (reader.Read()) tables.Add(reader.GetString(0));
        }
        var counts = new Dictionary<string, long>();
        foreach (var table in tables)
        {
            using var count = connection.CreateCommand();
            count.CommandText = $"SELECT COUNT(*) FROM \"{table}\"";
            counts[table] = (long)count.ExecuteScalar()!;
        }
        return counts;
    }

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        if (app is not null) await app.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }
}
