using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Sweep.Orchestrator.Tests.Cluster;

/// <summary>
/// Cluster flags a new user gets wrong, on real processes: a --port another program holds, a
/// --join address where no node answers. Each is one line and an exit code, with nothing persisted
/// and no node harmed.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class ClusterCliTests(PostgresServer postgres) : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(3);
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-cluster-cli-").FullName;
    private readonly List<SweepProcess> processes = [];

    public void Dispose()
    {
        foreach (var process in processes) process.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string Spec()
    {
        var path = Path.Combine(temp, "long.conf");
        File.WriteAllText(path, """
            sweep {
              name = long
              model = synthetic
              max-iter = 100000
              test-interval = 50
              grid { batch-size = [32], base-lr = [0.01], seed = [1, 2] }
              synthetic { iteration-ms = 2 }
            }
            """);
        return path;
    }

    private static string InUse(int port) =>
        $"sweep: --port {port}: in use by another program (another sweep node, or any server listening on 127.0.0.1:{port}); choose another port, or stop that program";

    private static void AssertOneLine(string expected, string stdout, string stderr)
    {
        Assert.Equal(expected, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.DoesNotContain("   at ", stdout + stderr);
    }

    [Fact]
    public void A_second_node_on_the_port_of_a_live_node_is_refused_and_the_live_node_runs_on()
    {
        int port = FreePort.Next();
        var live = SweepProcess.Start("run", Spec(), "--sweep-id", "live", "--port", port.ToString(), "--workers", "1", "--data-dir", Path.Combine(temp, "live"));
        processes.Add(live);
        live.WaitForLine(SweepProcess.SaysUp, Long);
        live.WaitForLine(l => l.Contains(": iter 100/"), Long);

        var second = Path.Combine(temp, "second");
        var (exit, stdout, stderr) = SweepProcess.Run("run", Spec(), "--sweep-id", "second", "--port", port.ToString(), "--data-dir", second);

        Assert.Equal(2, exit);
        AssertOneLine(InUse(port), stdout, stderr);
        Assert.False(Directory.Exists(second), "nothing is persisted: no journal.db");
        // The live node was not taken for a new incarnation of itself: it trains on, in the cluster.
        int printed = live.Stdout.Split('\n').Length;
        live.WaitForLines(lines => lines.Count > printed + 20, Long);
        Assert.False(live.HasExited);
        Assert.DoesNotContain("removed from the cluster", live.Stdout);
        live.Signal(SweepProcess.SIGTERM);
        Assert.Equal(143, live.WaitForExit(Long));
    }

    [Fact]
    public void A_port_another_program_listens_on_is_refused_for_the_first_node_and_for_a_worker()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        int port = ((IPEndPoint)holder.LocalEndpoint).Port;
        var data = Path.Combine(temp, "data");

        var first = SweepProcess.Run("run", Spec(), "--port", port.ToString(), "--data-dir", data);
        var worker = SweepProcess.Run("worker", "--join", $"127.0.0.1:{FreePort.Next()}", "--port", port.ToString(), "--data-dir", data);

        Assert.Equal(2, first.ExitCode);
        AssertOneLine(InUse(port), first.Stdout, first.Stderr);
        Assert.Equal(2, worker.ExitCode);
        AssertOneLine(InUse(port), worker.Stdout, worker.Stderr);
        Assert.False(Directory.Exists(data), "nothing is persisted: no journal.db");
    }

    /// <summary>
    /// Nothing listens at the --join address: after sweep.cluster.join-timeout (here SWEEP_JOIN_TIMEOUT=3s)
    /// one line and exit code 1, instead of Akka's retries and a 60 s ask timeout; no worker process
    /// was started, and the shared journal holds nothing (not even its tables).
    /// </summary>
    [Fact]
    public async Task A_join_where_no_node_answers_ends_after_the_join_timeout_in_one_line()
    {
        var journal = postgres.CreateDatabase();
        var nowhere = $"127.0.0.1:{FreePort.Next()}";
        var clock = Stopwatch.StartNew();
        using var node = SweepProcess.StartWith(new Dictionary<string, string> { ["SWEEP_JOIN_TIMEOUT"] = "3s" },
            "run", Spec(), "--port", FreePort.Next().ToString(), "--join", nowhere, "--journal", journal, "--data-dir", Path.Combine(temp, "joiner"));
        bool workerSeen = false;
        while (!node.HasExited && clock.Elapsed < Long)
        {
            workerSeen |= node.WorkerProcesses().Count > 0;
            await Task.Delay(100);
        }
        int exit = node.WaitForExit(TimeSpan.FromSeconds(10));

        Assert.Equal(1, exit);
        AssertOneLine($"sweep: --join {nowhere}: no cluster node answered within 3 s; check the address and that the first node is running", node.Stdout, node.Stderr);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(30));
        Assert.False(workerSeen, "no worker process is started before the node is in a cluster");
        await using var connection = new NpgsqlConnection(journal);
        await connection.OpenAsync();
        await using var tables = new NpgsqlCommand("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", connection);
        Assert.Equal(0L, (long)(await tables.ExecuteScalarAsync())!);
    }

    [Fact]
    public void A_worker_whose_join_no_node_answers_ends_after_the_join_timeout_in_one_line()
    {
        var nowhere = $"127.0.0.1:{FreePort.Next()}";
        var (exit, stdout, stderr) = SweepProcess.RunWith(new Dictionary<string, string> { ["SWEEP_JOIN_TIMEOUT"] = "2s" },
            "worker", "--join", nowhere, "--workers", "1", "--data-dir", Path.Combine(temp, "worker"));

        Assert.Equal(1, exit);
        AssertOneLine($"sweep: --join {nowhere}: no cluster node answered within 2 s; check the address and that the first node is running", stdout, stderr);
    }

    [Fact]
    public void A_join_timeout_that_is_not_a_duration_is_bad_input_naming_the_variable()
    {
        var (exit, stdout, stderr) = SweepProcess.RunWith(new Dictionary<string, string> { ["SWEEP_JOIN_TIMEOUT"] = "soon" },
            "worker", "--join", $"127.0.0.1:{FreePort.Next()}", "--data-dir", Path.Combine(temp, "worker"));

        Assert.Equal(2, exit);
        AssertOneLine("sweep: SWEEP_JOIN_TIMEOUT: 'soon' is not a positive duration (e.g. 30s, 500ms, 2m)", stdout, stderr);
        Assert.False(Directory.Exists(Path.Combine(temp, "worker")), "nothing is persisted");
    }
}
