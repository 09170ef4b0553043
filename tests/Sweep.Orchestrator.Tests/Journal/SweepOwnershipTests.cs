using Microsoft.Data.Sqlite;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Tests.Journal;

/// <summary>
/// Ownership claims on a real SQLite file and a real PostgreSQL server, the pure judgement of a
/// claim (<see cref="SweepOwner.WhyGone"/>, <see cref="SweepLiveness.Of"/>), and journal faults in
/// words from the drivers' real exceptions.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class SweepOwnershipTests(Cluster.PostgresServer postgres) : IDisposable
{
    private static readonly OwnershipSettings Settings = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3));
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-ownership-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private JournalSettings Sqlite() => new(temp);

    /// <summary>Another live process of this machine: the test host's parent would do, but a child we start is surer.</summary>
    private static OwnerIdentity Other(System.Diagnostics.Process process, string? host = null) =>
        new(Guid.NewGuid().ToString("N"), host ?? Environment.MachineName, process.Id, process.StartTime.ToUniversalTime(), null);

    [Fact]
    public async Task A_claim_is_exclusive_while_its_owner_lives_and_taken_over_once_the_owner_process_is_gone()
    {
        foreach (var journal in new[] { Sqlite(), new JournalSettings(temp, postgres.CreateDatabase()) })
        {
            using var sleeper = System.Diagnostics.Process.Start("sleep", "60");
            var owner = Other(sleeper);
            await SweepOwnership.ClaimAsync(journal, "s1", owner, Settings);
            var me = OwnerIdentity.ThisProcess();
            var refused = await Assert.ThrowsAsync<InvalidInputException>(() => SweepOwnership.ClaimAsync(journal, "s1", me, Settings));
            Assert.StartsWith($"sweep 's1' is owned by {Environment.MachineName} pid {sleeper.Id} since ", refused.Message);
            Assert.True(await SweepOwnership.RenewAsync(journal, "s1", owner));
            Assert.False(await SweepOwnership.RenewAsync(journal, "s1", me));

            sleeper.Kill();
            await sleeper.WaitForExitAsync();
            await SweepOwnership.ClaimAsync(journal, "s1", me, Settings);
            var now = await SweepOwnership.ReadAsync(journal, "s1");
            Assert.Equal(me, now!.Owner);
            // The old owner, were it only stalled, learns that it lost the sweep.
            Assert.False(await SweepOwnership.RenewAsync(journal, "s1", owner));

            // Released: anyone may take it; forgotten: the id is free again.
            await SweepOwnership.ReleaseAsync(journal, "s1", me);
            Assert.True((await SweepOwnership.ReadAsync(journal, "s1"))!.Released);
            await SweepOwnership.ClaimAsync(journal, "s1", OwnerIdentity.ThisProcess(), Settings);
            var third = OwnerIdentity.ThisProcess();
            await SweepOwnership.ClaimAsync(journal, "s2", third, Settings);
            await SweepOwnership.ReleaseAsync(journal, "s2", third, forget: true);
            Assert.False(await SweepOwnership.ExistsAsync(journal, "s2"));
        }
    }

    [Fact]
    public async Task A_claim_held_on_another_host_lapses_only_after_the_lapse_without_renewal()
    {
        foreach (var journal in new[] { Sqlite(), new JournalSettings(temp, postgres.CreateDatabase()) })
        {
            var remote = new OwnerIdentity(Guid.NewGuid().ToString("N"), "far-away-host", 4242, DateTimeOffset.UtcNow, null);
            await SweepOwnership.ClaimAsync(journal, "r", remote, Settings);
            var me = OwnerIdentity.ThisProcess();
            await Assert.ThrowsAsync<InvalidInputException>(() => SweepOwnership.ClaimAsync(journal, "r", me, Settings));
            // Renewed within the lapse: still refused.
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.True(await SweepOwnership.RenewAsync(journal, "r", remote));
            await Task.Delay(TimeSpan.FromSeconds(2));
            await Assert.ThrowsAsync<InvalidInputException>(() => SweepOwnership.ClaimAsync(journal, "r", me, Settings));
            // Not renewed for longer than the lapse: taken over.
            await Task.Delay(TimeSpan.FromSeconds(2));
            await SweepOwnership.ClaimAsync(journal, "r", me, Settings);
            Assert.Equal(me.Token, (await SweepOwnership.ReadAsync(journal, "r"))!.Owner.Token);
        }
    }

    [Fact]
    public async Task Claims_racing_from_many_tasks_have_exactly_one_winner()
    {
        foreach (var journal in new[] { Sqlite(), new JournalSettings(temp, postgres.CreateDatabase()) })
        {
            var contenders = Enumerable.Range(0, 8).Select(_ => OwnerIdentity.ThisProcess()).ToList();
            var outcomes = await Task.WhenAll(contenders.Select(async c =>
            {
                try
                {
                    await SweepOwnership.ClaimAsync(journal, "race", c, Settings);
                    return true;
                }
                catch (InvalidInputException)
                {
                    return false;
                }
            }));
            // Same process, so each loser sees a live owner: exactly one wins.
            Assert.Equal(1, outcomes.Count(won => won));
            Assert.Equal(contenders[Array.IndexOf(outcomes, true)].Token, (await SweepOwnership.ReadAsync(journal, "race"))!.Owner.Token);
        }
    }

    [Fact]
    public void An_owner_is_gone_when_released_when_its_process_died_when_its_node_left_or_when_it_lapsed()
    {
        var since = new DateTimeOffset(2026, 11, 30, 14, 3, 0, TimeSpan.Zero);
        var identity = new OwnerIdentity("t", "box", 77, since, "akka.tcp://sweep@10.0.0.5:4053");
        SweepOwner Owner(double renewedAgo, bool released = false) => new(identity, since, since, TimeSpan.FromSeconds(renewedAgo), released);
        bool Alive(int pid, DateTimeOffset start) => true;
        bool Dead(int pid, DateTimeOffset start) => false;
        var lapse = TimeSpan.FromSeconds(30);

        Assert.Null(Owner(5).WhyGone("box", Alive, lapse));
        Assert.Null(Owner(5).WhyGone("other", Dead, lapse)); // another host's process ids mean nothing here
        Assert.Equal("its process box pid 77 (akka.tcp://sweep@10.0.0.5:4053) is gone", Owner(5).WhyGone("box", Dead, lapse));
        Assert.Equal("its node akka.tcp://sweep@10.0.0.5:4053 left the cluster", Owner(5).WhyGone("other", Alive, lapse, a => a == identity.Address));
        Assert.Equal("box pid 77 (akka.tcp://sweep@10.0.0.5:4053) has not renewed its claim for 31 s", Owner(31).WhyGone("other", Alive, lapse));
        Assert.StartsWith("released by box pid 77", Owner(1, released: true).WhyGone("box", Alive, lapse));

        Assert.Null(SweepLiveness.Of("s", running: false, Owner(999), "box", Dead, lapse));
        Assert.Equal(new SweepLiveness(false, $"running: owned by box pid 77 (akka.tcp://sweep@10.0.0.5:4053) since {since.ToLocalTime():yyyy-MM-dd HH:mm:ss}"), SweepLiveness.Of("s", true, Owner(1), "box", Alive, lapse));
        Assert.Equal(new SweepLiveness(true, $"interrupted: no process owns it since {since.ToLocalTime():yyyy-MM-dd HH:mm:ss} (its process box pid 77 (akka.tcp://sweep@10.0.0.5:4053) is gone); continue with: sweep resume s"), SweepLiveness.Of("s", true, Owner(1), "box", Dead, lapse));
        Assert.Equal(new SweepLiveness(true, "interrupted: no process owns it; continue with: sweep resume s"), SweepLiveness.Of("s", true, null, "box", Alive, lapse));
    }

    [Fact]
    public void The_drivers_real_errors_are_described_in_one_line_with_what_to_do()
    {
        var file = Path.Combine(temp, "faults.db");
        using (var setup = new SqliteConnection($"Data Source={file};Pooling=False"))
        {
            setup.Open();
            Run(setup, "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);");
        }

        // Locked: another connection holds the write lock, this one gives up after its timeout.
        using (var holder = new SqliteConnection($"Data Source={file};Pooling=False"))
        using (var writer = new SqliteConnection($"Data Source={file};Pooling=False;Default Timeout=1"))
        {
            holder.Open();
            Run(holder, "BEGIN EXCLUSIVE;");
            writer.Open();
            var locked = Assert.ThrowsAny<SqliteException>(() => Run(writer, "INSERT INTO t VALUES (2);"));
            Assert.Equal(new JournalFault("the database stayed locked by another process for longer than the busy retry (SQLite error 5: database is locked)", "stop the process that holds the journal locked (or raise sweep.journal.busy-retry)"), JournalFaults.Describe(locked));
        }

        using (var connection = new SqliteConnection($"Data Source={file};Pooling=False"))
        {
            connection.Open();
            var duplicate = Assert.ThrowsAny<SqliteException>(() => Run(connection, "INSERT INTO t VALUES (1);"));
            var fault = JournalFaults.Describe(new AggregateException(new InvalidOperationException("wrapped", duplicate)));
            Assert.StartsWith("a write conflicted with another writer of the same sweep (SQLite error 19: UNIQUE constraint failed: t.id)", fault.Cause);
        }

        using (var readOnly = new SqliteConnection($"Data Source={file};Pooling=False;Mode=ReadOnly"))
        {
            readOnly.Open();
            var refused = Assert.ThrowsAny<SqliteException>(() => Run(readOnly, "INSERT INTO t VALUES (3);"));
            Assert.Equal("the journal is read-only (SQLite error 8: attempt to write a readonly database)", JournalFaults.Describe(refused).Cause);
        }

        // A PostgreSQL server nobody listens for.
        int closed = FreePort.Next();
        using var unreachable = new Npgsql.NpgsqlConnection($"Host=127.0.0.1;Port={closed};Username=x;Database=y;Timeout=2");
        var down = Assert.ThrowsAny<Npgsql.NpgsqlException>(() => unreachable.Open());
        var downFault = JournalFaults.Describe(down);
        Assert.StartsWith("the PostgreSQL server cannot be reached (", downFault.Cause);
        Assert.Equal("start the PostgreSQL server (or correct Host and Port in --journal, or fix the network)", downFault.Advice);

        // Anything else: its type and first line, never a stack trace.
        Assert.Equal(new JournalFault("TimeoutException: slow\u2026", "fix the cause"), JournalFaults.Describe(new TimeoutException("slow\u2026\n   at somewhere")));
    }

    [Fact]
    public void Journal_timings_come_from_hocon_and_bad_values_name_their_key()
    {
        var defaults = JournalTimings.FromConfig(Hosting.SweepAkkaConfiguration.AkkaConfig);
        Assert.Equal(new JournalTimings(TimeSpan.FromSeconds(30), new OwnershipSettings(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)), TimeSpan.FromMilliseconds(250)), defaults);
        var bad = Assert.Throws<InvalidInputException>(() => JournalTimings.FromConfig(Akka.Configuration.ConfigurationFactory.ParseString("sweep.journal { busy-retry = 0s, owner-renew-every = 5s, owner-lapse = 30s }")));
        Assert.Equal("sweep.journal.busy-retry: '0s' is not a positive duration (e.g. 30s, 500ms, 2m)", bad.Message);
        var order = Assert.Throws<InvalidInputException>(() => JournalTimings.FromConfig(Akka.Configuration.ConfigurationFactory.ParseString("sweep.journal { busy-retry = 5s, owner-renew-every = 10s, owner-lapse = 5s }")));
        Assert.Equal("sweep.journal.owner-lapse (5 s) must be longer than sweep.journal.owner-renew-every (10 s): a claim must outlive the time between its renewals", order.Message);
    }

    [Theory]
    [InlineData("SWEEP_OWNER_LAPSE", "-5s", "sweep: SWEEP_OWNER_LAPSE: '-5s' is not a positive duration (e.g. 30s, 500ms, 2m)")]
    [InlineData("SWEEP_JOURNAL_BUSY_RETRY", "soon", "sweep: SWEEP_JOURNAL_BUSY_RETRY: 'soon' is not a positive duration (e.g. 30s, 500ms, 2m)")]
    [InlineData("SWEEP_OWNER_LAPSE", "3s", "sweep: SWEEP_OWNER_LAPSE (3 s) must be longer than sweep.journal.owner-renew-every (5 s): a claim must outlive the time between its renewals")]
    public void An_environment_override_that_is_not_a_duration_is_bad_input_naming_the_variable(string variable, string value, string expected)
    {
        File.WriteAllBytes(Path.Combine(temp, "journal.db"), []);
        var (exit, stdout, stderr) = SweepProcess.RunWith(new Dictionary<string, string> { [variable] = value }, "status", "--data-dir", temp);
        Assert.Equal(2, exit);
        Assert.Equal(expected, stderr.Trim());
        Assert.Equal("", stdout);
    }

    private static void Run(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
