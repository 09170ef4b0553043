using System.Diagnostics;
using System.Text.Json;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Orchestrator.Reporting;
using Sweep.Protocol.Events;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests;

/// <summary>
/// An uninterrupted run of <see cref="JournalFaultTests.Spec"/>: the reference every faulted and
/// resumed run must equal, test point by test point.
/// </summary>
public sealed class UninterruptedReference : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("sweep-reference-").FullName;

    public UninterruptedReference()
    {
        var spec = JournalFaultTests.WriteSpec(folder);
        var data = Path.Combine(folder, "data");
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "reference", "--data-dir", data, "--workers", "2");
        if (exit != 0) throw new InvalidOperationException($"the reference run failed ({exit}): {stdout}{stderr}");
        Curves = JournalFaultTests.CurvesAsync(new JournalSettings(data), "reference").GetAwaiter().GetResult();
    }

    /// <summary>Trial id → its test points.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<TrialMetrics>> Curves { get; }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(folder, recursive: true);
    }
}

/// <summary>
/// The journal failing under a running sweep (a full disk, a database locked by another process, a
/// PostgreSQL server stopped), two processes on one sweep, and a sweep whose process died: real
/// `sweep` processes on a real tmpfs, a real lock on the SQLite file, a real PostgreSQL server.
/// Every faulted sweep must stop within seconds with one line naming the journal and the cause,
/// and after `sweep resume` every trial must have every test point exactly once, equal to an
/// uninterrupted run of the same spec.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class JournalFaultTests(UninterruptedReference reference) : IDisposable, IClassFixture<UninterruptedReference>
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(3);
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-journal-faults-").FullName;
    private readonly List<string> mounts = [];

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var mount in mounts) Exec("umount", "-l", mount);
        Directory.Delete(temp, recursive: true);
    }

    /// <summary>12 synthetic trials of 300 iterations with a test point every 10: long enough to fault mid-way, short enough to run often.</summary>
    public static string WriteSpec(string folder)
    {
        var path = Path.Combine(folder, "faults.conf");
        File.WriteAllText(path, """
            sweep {
              name = journal-faults
              model = synthetic
              max-iter = 300
              test-interval = 10
              seed = 3
              grid { batch-size = [16, 32, 64], base-lr = [0.005, 0.01, 0.02, 0.04] }
              synthetic { iteration-ms = 6 }
            }
            """);
        return path;
    }

    /// <summary>Each trial's curve as the report rebuilds it from the journal's events.</summary>
    public static async Task<IReadOnlyDictionary<string, IReadOnlyList<TrialMetrics>>> CurvesAsync(JournalSettings journal, string sweepId)
    {
        return TrialCurves.FromEvents(await SweepJournal.EventsAsync(journal, sweepId));
    }

    private static async Task<IReadOnlyList<ISweepEvent>> EventsAsync(JournalSettings journal, string sweepId)
    {
        return await SweepJournal.EventsAsync(journal, sweepId);
    }

    /// <summary>Every trial completed, each curve has the reference's test points (0, 10, …, 300) exactly once, with the same numbers.</summary>
    private async Task AssertEqualsUninterruptedAsync(JournalSettings journal, string sweepId)
    {
        var events = await EventsAsync(journal, sweepId);
        Assert.Single(events.OfType<SweepCompleted>());
        Assert.Equal(reference.Curves.Count, events.OfType<TrialCompleted>().Select(e => e.TrialId).Distinct().Count());
        Assert.Equal(events.OfType<TrialCompleted>().Count(), events.OfType<TrialCompleted>().Select(e => e.TrialId).Distinct().Count());
        var curves = TrialCurves.FromEvents(events);
        Assert.Equal(reference.Curves.Keys.Order(), curves.Keys.Order());
        foreach (var (trial, expected) in reference.Curves)
        {
            var actual = curves[trial];
            Assert.Equal(Enumerable.Range(0, 31).Select(i => i * 10), expected.Select(m => m.Iteration));
            Assert.Equal(expected.Select(m => m.Iteration), actual.Select(m => m.Iteration));
            Assert.Equal(expected.Select(m => (m.TrainLoss, m.TestLoss, m.TestAccuracy, m.LearningRate)), actual.Select(m => (m.TrainLoss, m.TestLoss, m.TestAccuracy, m.LearningRate)));
        }
    }

    private static void AssertNoStackTrace(string text) => Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);

    [Fact]
    public async Task A_full_disk_stops_the_sweep_within_seconds_with_one_line_and_resume_after_freeing_space_loses_nothing()
    {
        var spec = WriteSpec(temp);
        var mount = MountTmpfs("tiny", "1200k");
        var data = Path.Combine(mount, "d");

        var clock = Stopwatch.StartNew();
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "full", "--data-dir", data, "--workers", "2");
        Assert.True(exit == 1, stdout + stderr);
        var last = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1];
        Assert.True($"journal {Path.Combine(data, "journal.db")}: disk full (SQLite error 13: database or disk is full); nothing was lost, free space and run: sweep resume full --data-dir {data}" == last, stdout + stderr);
        AssertNoStackTrace(stdout + stderr);
        Assert.DoesNotContain("AskTimeout", stdout + stderr, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"the faulted run took {clock.Elapsed}");

        // Free space, as the line says, and resume.
        Exec("mount", "-o", "remount,size=64m", mount);
        (exit, stdout, stderr) = SweepProcess.Run("resume", "full", "--data-dir", data, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
        await AssertEqualsUninterruptedAsync(new JournalSettings(data), "full");
    }

    [Fact]
    public void A_disk_too_full_to_start_on_is_one_line_at_once_and_the_same_run_works_after_freeing_space()
    {
        var spec = WriteSpec(temp);
        var mount = MountTmpfs("tinier", "100k");
        var data = Path.Combine(mount, "d");

        var clock = Stopwatch.StartNew();
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "cramped", "--data-dir", data, "--workers", "2");
        Assert.True(exit == 1, stdout + stderr);
        // The journal's tables (or the claim before them) do not fit: the sweep never started, so the way on is the same run, not a resume.
        Assert.Matches($@"^sweep: journal {System.Text.RegularExpressions.Regex.Escape(Path.Combine(data, "journal.db"))}: disk full \(SQLite error 13: database or disk is full\); (sweep cramped was not started, free space and run the same 'sweep run' again|nothing was changed, free space and try again)\n$",
            stderr.Split('\n').Last(l => l.StartsWith("sweep: ", StringComparison.Ordinal)) + "\n");
        Assert.DoesNotContain("resume", stdout + stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("RecoveryTimedOut", stdout + stderr, StringComparison.Ordinal);
        AssertNoStackTrace(stdout + stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"refusing took {clock.Elapsed}");

        Exec("mount", "-o", "remount,size=64m", mount);
        (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "cramped", "--data-dir", data, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
        Assert.StartsWith("sweep cramped (journal-faults): 12 of 12 trial(s) to run", stdout, StringComparison.Ordinal);

        // A report onto a full disk: one line naming the file, what to do, exit code 1.
        var full = MountTmpfs("full-out", "16k");
        (exit, stdout, stderr) = SweepProcess.Run("report", "cramped", "--data-dir", data, "--out", Path.Combine(full, "r"));
        Assert.True(exit == 1, stdout + stderr);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(stderr, $@"^sweep: [^\n]*'{System.Text.RegularExpressions.Regex.Escape(Path.Combine(full, "r"))}/[^']+'[^\n]*; free space and try again\n$"), stderr);
        AssertNoStackTrace(stdout + stderr);
    }

    [Fact]
    public async Task A_lock_shorter_than_the_busy_retry_is_waited_out_and_the_sweep_goes_on_unharmed()
    {
        var spec = WriteSpec(temp);
        var data = Path.Combine(temp, "d");
        using (var run = SweepProcess.StartWith(new Dictionary<string, string> { ["SWEEP_JOURNAL_BUSY_RETRY"] = "30s" }, "run", spec, "--sweep-id", "brief-lock", "--data-dir", data, "--workers", "2"))
        {
            run.WaitForLine(l => l.Contains("iter 100/300", StringComparison.Ordinal), Long);
            HoldExclusiveLock(Path.Combine(data, "journal.db"), TimeSpan.FromSeconds(4));
            Assert.True(run.WaitForExit(Long) == 0, run.Stdout + run.Stderr);
        }
        await AssertEqualsUninterruptedAsync(new JournalSettings(data), "brief-lock");
    }

    [Fact]
    public async Task A_lock_that_outlasts_the_busy_retry_stops_the_sweep_cleanly_and_resume_loses_nothing()
    {
        var spec = WriteSpec(temp);
        var data = Path.Combine(temp, "d");
        var journalFile = Path.Combine(data, "journal.db");
        using (var run = SweepProcess.StartWith(new Dictionary<string, string> { ["SWEEP_JOURNAL_BUSY_RETRY"] = "2s" }, "run", spec, "--sweep-id", "long-lock", "--data-dir", data, "--workers", "2"))
        {
            run.WaitForLine(l => l.Contains("iter 100/300", StringComparison.Ordinal), Long);
            var clock = Stopwatch.StartNew();
            using (var locker = OpenExclusiveLock(journalFile))
            {
                Assert.True(run.WaitForExit(TimeSpan.FromSeconds(60)) == 1, run.Stdout + run.Stderr);
                // What only reads the journal is not held up by another process's lock on it.
                var busy = new Dictionary<string, string> { ["SWEEP_JOURNAL_BUSY_RETRY"] = "2s" };
                var (code, json, err) = SweepProcess.RunWith(busy, "status", "long-lock", "--data-dir", data, "--json");
                Assert.True(code == 0, json + err);
                var status = JsonDocument.Parse(json).RootElement;
                // The stop could not be journalled (the lock), so the journal says running; its process is gone.
                Assert.Equal("Running", status.GetProperty("state").GetString());
                Assert.True(status.GetProperty("ownerGone").GetBoolean(), json);
                Assert.InRange(status.GetProperty("trials").EnumerateArray().Count(t => t.GetProperty("state").GetString() == "Completed"), 0, 11);
                (code, json, err) = SweepProcess.RunWith(busy, "status", "--data-dir", data, "--json");
                Assert.True(code == 0, json + err);
                Assert.Equal("long-lock", JsonDocument.Parse(json).RootElement[0].GetProperty("sweepId").GetString());
                (code, json, err) = SweepProcess.RunWith(busy, "report", "long-lock", "--data-dir", data);
                Assert.True(code == 0, json + err);
                Assert.True(File.Exists(Path.Combine(data, "long-lock", "report", "report.md")));
            }
            var last = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1];
            Assert.StartsWith($"journal {journalFile}: the database stayed locked by another process for longer than the busy retry (SQLite error 5: database is locked); nothing was lost", last);
            Assert.EndsWith($"and run: sweep resume long-lock --data-dir {data}", last);
            AssertNoStackTrace(run.Stdout + run.Stderr);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(40), $"stopping took {clock.Elapsed}");
        }
        var (exit, stdout, stderr) = SweepProcess.Run("resume", "long-lock", "--data-dir", data, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
        await AssertEqualsUninterruptedAsync(new JournalSettings(data), "long-lock");
    }

    [Fact]
    public async Task A_stopped_postgresql_server_stops_the_cluster_node_cleanly_and_resume_after_it_is_back_loses_nothing()
    {
        if (Environment.GetEnvironmentVariable("SWEEP_TEST_POSTGRES") is { Length: > 0 })
            Assert.Fail("this test stops and starts a PostgreSQL server of its own: unset SWEEP_TEST_POSTGRES");
        using var server = new Cluster.PostgresServer();
        var journal = server.CreateDatabase();
        var spec = WriteSpec(temp);
        var data = Path.Combine(temp, "d");
        int port = FreePort.Next();
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", "pg-down", "--journal", journal, "--data-dir", data, "--workers", "2", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            run.WaitForLine(l => l.Contains("iter 100/300", StringComparison.Ordinal), Long);
            server.Stop();
            Assert.True(run.WaitForExit(TimeSpan.FromSeconds(90)) == 1, run.Stdout + run.Stderr);
            var last = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1];
            Assert.Matches(@"^journal PostgreSQL 127\.0\.0\.1:\d+/sweep_test_\w+: the PostgreSQL server (cannot be reached|shut down or is starting) \(.*\); nothing was lost, start the PostgreSQL server.* and run: sweep resume pg-down --journal ", last);
            AssertNoStackTrace(run.Stdout + run.Stderr);
        }
        server.Start();
        var (exit, stdout, stderr) = SweepProcess.Run("resume", "pg-down", "--journal", journal, "--data-dir", data, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
        await AssertEqualsUninterruptedAsync(new JournalSettings(data, journal), "pg-down");
    }

    [Fact]
    public void Two_runs_of_one_sweep_id_at_once_one_is_refused_at_once_naming_the_owner()
    {
        var spec = WriteSpec(temp);
        var data = Path.Combine(temp, "d");
        using var first = SweepProcess.Start("run", spec, "--sweep-id", "twice", "--data-dir", data, "--workers", "2");
        first.WaitForLine(l => l.StartsWith("sweep twice", StringComparison.Ordinal), Long);
        var clock = Stopwatch.StartNew();
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "twice", "--data-dir", data, "--workers", "2");
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        Assert.Matches($@"^sweep: sweep 'twice' is owned by {Environment.MachineName} pid \d+ since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d \(renewed \d+ s ago\): one process runs a sweep at a time; watch it with 'sweep watch twice --data-dir {System.Text.RegularExpressions.Regex.Escape(data)}'\n$", stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"refusing took {clock.Elapsed}");

        // The same for a resume while it runs; the owner finishes unharmed.
        (exit, _, stderr) = SweepProcess.Run("resume", "twice", "--data-dir", data);
        Assert.Equal(2, exit);
        Assert.Contains("is owned by", stderr, StringComparison.Ordinal);
        Assert.True(first.WaitForExit(Long) == 0, first.Stdout + first.Stderr);
    }

    [Fact]
    public async Task Two_resumes_at_once_one_loses_at_once_and_the_winner_finishes_every_trial_exactly_once()
    {
        var spec = WriteSpec(temp);
        var data = Path.Combine(temp, "d");
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", "raced", "--data-dir", data, "--workers", "2"))
        {
            run.WaitForLine(l => l.Contains("iter 100/300", StringComparison.Ordinal), Long);
            run.Signal(SweepProcess.SIGKILL);
            run.WaitForExit(TimeSpan.FromSeconds(30));
        }
        using var a = SweepProcess.Start("resume", "raced", "--data-dir", data, "--workers", "2");
        using var b = SweepProcess.Start("resume", "raced", "--data-dir", data, "--workers", "2");
        int exitA = a.WaitForExit(Long), exitB = b.WaitForExit(Long);
        Assert.Equal([0, 2], new[] { exitA, exitB }.Order());
        var loser = exitA == 2 ? a : b;
        Assert.Matches(@"^sweep: sweep 'raced' (is owned by .* pid \d+ since|is being claimed by another process)", loser.Stderr);
        await AssertEqualsUninterruptedAsync(new JournalSettings(data), "raced");
    }

    [Fact]
    public void Two_runs_with_the_default_id_started_together_both_run_under_ids_of_their_own()
    {
        var spec = Path.Combine(temp, "tiny.conf");
        File.WriteAllText(spec, "sweep { name = same, model = synthetic, max-iter = 20, test-interval = 10, grid { batch-size = [16], base-lr = [0.01] } }");
        var data = Path.Combine(temp, "d");
        using var a = SweepProcess.Start("run", spec, "--data-dir", data, "--workers", "1");
        using var b = SweepProcess.Start("run", spec, "--data-dir", data, "--workers", "1");
        Assert.True(a.WaitForExit(Long) == 0, a.Stdout + a.Stderr);
        Assert.True(b.WaitForExit(Long) == 0, b.Stdout + b.Stderr);
        string IdOf(SweepProcess p) => System.Text.RegularExpressions.Regex.Match(p.Stdout, @"^sweep (\S+) \(same\)", System.Text.RegularExpressions.RegexOptions.Multiline).Groups[1].Value;
        Assert.StartsWith("same-", IdOf(a), StringComparison.Ordinal);
        Assert.StartsWith("same-", IdOf(b), StringComparison.Ordinal);
        Assert.NotEqual(IdOf(a), IdOf(b));
        var (exit, stdout, _) = SweepProcess.Run("status", "--data-dir", data, "--json");
        Assert.Equal(0, exit);
        var sweeps = JsonDocument.Parse(stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(2, sweeps.Count);
        Assert.All(sweeps, s => Assert.Equal("Completed", s.GetProperty("state").GetString()));
    }

    [Fact]
    public void A_killed_owner_is_seen_as_gone_by_status_and_watch_and_resume_takes_over_at_once()
    {
        var spec = WriteSpec(temp);
        var data = Path.Combine(temp, "d");
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", "orphan", "--data-dir", data, "--workers", "2"))
        {
            run.WaitForLine(l => l.Contains("iter 100/300", StringComparison.Ordinal), Long);
            run.Signal(SweepProcess.SIGKILL);
            run.WaitForExit(TimeSpan.FromSeconds(30));
        }

        var (exit, stdout, _) = SweepProcess.Run("status", "orphan", "--data-dir", data);
        Assert.Equal(0, exit);
        Assert.Matches(@"^sweep orphan: interrupted: no process owns it since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(its process .* pid \d+ is gone\); continue with: sweep resume orphan --data-dir ", stdout);
        // The table agrees: nothing runs, the sweep is interrupted.
        var footer = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1];
        Assert.StartsWith("sweep orphan (journal-faults): interrupted (its process is gone); ", footer, StringComparison.Ordinal);
        Assert.DoesNotContain("running", footer, StringComparison.Ordinal);
        (exit, stdout, _) = SweepProcess.Run("status", "orphan", "--data-dir", data, "--json");
        Assert.True(JsonDocument.Parse(stdout).RootElement.GetProperty("ownerGone").GetBoolean());
        (exit, stdout, _) = SweepProcess.Run("status", "--data-dir", data);
        Assert.Contains("orphan  journal-faults  interrupted (no process owns it)", stdout, StringComparison.Ordinal);

        var clock = Stopwatch.StartNew();
        (exit, stdout, _) = SweepProcess.Run("watch", "orphan", "--data-dir", data);
        Assert.Equal(1, exit);
        Assert.Contains("sweep orphan: interrupted: no process owns it since", stdout, StringComparison.Ordinal);
        Assert.Contains($"continue with: sweep resume orphan --data-dir {data}", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("watching sweep orphan", stdout, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"watch took {clock.Elapsed}");

        // Same machine, process gone: no waiting for the claim to lapse.
        (exit, stdout, var stderr) = SweepProcess.Run("resume", "orphan", "--data-dir", data, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
    }

    [Fact]
    public async Task An_owner_on_another_machine_blocks_a_resume_until_its_claim_lapses()
    {
        var spec = WriteSpec(temp);
        var data = Path.Combine(temp, "d");
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", "remote", "--data-dir", data, "--workers", "2"))
        {
            run.WaitForLine(l => l.Contains("iter 50/300", StringComparison.Ordinal), Long);
            run.Signal(SweepProcess.SIGKILL);
            run.WaitForExit(TimeSpan.FromSeconds(30));
        }
        // As if the owner had run on another machine, and renewed its claim just now.
        var journal = new JournalSettings(data);
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection(journal.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "UPDATE sweep_owner SET host = 'gpu-box-7', renewed_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE sweep_id = 'remote'";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }
        var lapse = new Dictionary<string, string> { ["SWEEP_OWNER_LAPSE"] = "8s", ["SWEEP_OWNER_RENEW_EVERY"] = "1s" };
        var (exit, _, stderr) = SweepProcess.RunWith(lapse, "resume", "remote", "--data-dir", data, "--workers", "2");
        Assert.Equal(2, exit);
        Assert.Contains("sweep 'remote' is owned by gpu-box-7 pid", stderr, StringComparison.Ordinal);

        await Task.Delay(TimeSpan.FromSeconds(9));
        string stdout;
        (exit, stdout, stderr) = SweepProcess.RunWith(lapse, "resume", "remote", "--data-dir", data, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
        await AssertEqualsUninterruptedAsync(journal, "remote");
    }

    [Fact]
    public void Sigterm_ends_a_run_with_exit_code_143_after_stopping_it_cleanly()
    {
        var spec = WriteSpec(temp);
        var data = Path.Combine(temp, "d");
        using var run = SweepProcess.Start("run", spec, "--sweep-id", "termed", "--data-dir", data, "--workers", "2");
        run.WaitForLine(l => l.Contains("iter 50/300", StringComparison.Ordinal), Long);
        run.Signal(15);
        Assert.Equal(143, run.WaitForExit(Long));
        Assert.Contains("continue with: sweep resume termed", run.Stdout, StringComparison.Ordinal);
        var (exit, stdout, _) = SweepProcess.Run("status", "termed", "--data-dir", data, "--json");
        Assert.Equal(0, exit);
        Assert.Equal("Interrupted", JsonDocument.Parse(stdout).RootElement.GetProperty("state").GetString());

        // watch on an interrupted sweep shows it and returns.
        (exit, stdout, _) = SweepProcess.Run("watch", "termed", "--data-dir", data);
        Assert.Equal(1, exit);
        Assert.Contains("sweep termed is interrupted; continue with: sweep resume termed", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_busy_dashboard_port_is_refused_before_anything_is_persisted()
    {
        var spec = WriteSpec(temp);
        var data = Path.Combine(temp, "d");
        using var busy = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        busy.Start();
        int port = ((System.Net.IPEndPoint)busy.LocalEndpoint).Port;
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "dash", "--data-dir", data, "--dashboard", "--dashboard-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(2, exit);
        Assert.StartsWith($"sweep: --dashboard-port {port}: cannot serve there", stderr, StringComparison.Ordinal);
        AssertNoStackTrace(stdout + stderr);
        (exit, stdout, _) = SweepProcess.Run("status", "--data-dir", data, "--json");
        Assert.Equal(0, exit);
        Assert.Equal("[]", stdout.Trim());
        busy.Stop();
        // The id is still free.
        (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "dash", "--data-dir", data, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
    }

    /// <summary>Takes SQLite's write lock on the journal (BEGIN EXCLUSIVE) from this process, as another program holding the file would.</summary>
    private static Microsoft.Data.Sqlite.SqliteConnection OpenExclusiveLock(string journalFile)
    {
        var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={journalFile};Pooling=False;Default Timeout=30");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "BEGIN EXCLUSIVE;";
        command.ExecuteNonQuery();
        return connection;
    }

    private static void HoldExclusiveLock(string journalFile, TimeSpan howLong)
    {
        using var locker = OpenExclusiveLock(journalFile);
        Thread.Sleep(howLong);
    }

    /// <summary>A real tmpfs of <paramref name="size"/> (e.g. "100k") at TEMP/NAME, unmounted when the test ends; needs root (CI runs as root).</summary>
    private string MountTmpfs(string name, string size)
    {
        if (Environment.UserName != "root") Assert.Fail("this test mounts a tmpfs and needs root (CI runs as root)");
        var mount = Path.Combine(temp, name);
        Directory.CreateDirectory(mount);
        Exec("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", mount);
        mounts.Add(mount);
        return mount;
    }

    private static void Exec(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        process.WaitForExit();
        if (process.ExitCode != 0 && file != "umount")
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {process.StandardError.ReadToEnd()}");
    }
}
