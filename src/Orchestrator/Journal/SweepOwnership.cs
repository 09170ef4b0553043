using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Journal;

/// <summary>
/// One process's claim on a sweep: a random token, and who holds it (host name, process id and
/// the process's start time, so a reused process id is not mistaken for the owner; the cluster
/// address when the owner is a cluster node).
/// </summary>
public sealed record OwnerIdentity(string Token, string Host, int Pid, DateTimeOffset ProcessStart, string? Address)
{
    /// <summary>This process, with a fresh token; <paramref name="address"/> is its cluster address, if it is a cluster node.</summary>
    public static OwnerIdentity ThisProcess(string? address = null)
    {
        using var self = Process.GetCurrentProcess();
        return new OwnerIdentity(Guid.NewGuid().ToString("N"), Environment.MachineName, Environment.ProcessId, self.StartTime.ToUniversalTime(), address);
    }

    /// <summary>"host pid 1234" (and the cluster address when there is one): how people are told who owns a sweep.</summary>
    public string Describe() => $"{Host} pid {Pid}{(Address is null ? "" : $" ({Address})")}";
}

/// <summary>
/// A sweep's ownership as the journal records it. <paramref name="RenewedAgo"/> is measured by the
/// journal's own clock (PostgreSQL's now(), SQLite's 'now'), so machines whose clocks differ agree.
/// <paramref name="Released"/>: the owner let go (the process ended normally).
/// </summary>
public sealed record SweepOwner(OwnerIdentity Owner, DateTimeOffset Since, DateTimeOffset RenewedAt, TimeSpan RenewedAgo, bool Released)
{
    /// <summary>
    /// Why this owner no longer holds the sweep, or null while it does: released, its process is
    /// gone (same host: checked at once), or its claim lapsed (not renewed for <paramref name="lapse"/>).
    /// <paramref name="processAlive"/> answers for a process of this host (id, start time);
    /// <paramref name="leftCluster"/> says whether a cluster address has left this node's cluster.
    /// Pure: tested without a journal.
    /// </summary>
    public string? WhyGone(string thisHost, Func<int, DateTimeOffset, bool> processAlive, TimeSpan lapse, Func<string, bool>? leftCluster = null)
    {
        if (Released) return $"released by {Owner.Describe()} at {RenewedAt.ToLocalTime():HH:mm:ss}";
        if (string.Equals(Owner.Host, thisHost, StringComparison.OrdinalIgnoreCase) && !processAlive(Owner.Pid, Owner.ProcessStart))
            return $"its process {Owner.Describe()} is gone";
        if (Owner.Address is { } address && leftCluster?.Invoke(address) == true)
            return $"its node {address} left the cluster";
        if (RenewedAgo > lapse)
            return string.Create(CultureInfo.InvariantCulture, $"{Owner.Describe()} has not renewed its claim for {RenewedAgo.TotalSeconds:0} s");
        return null;
    }
}

/// <summary>
/// Whether a sweep the journal shows as running has a live owner: what status, watch and the
/// dashboard say about it. <paramref name="OwnerGone"/>: nobody runs it (its process was killed, or
/// its claim lapsed); <paramref name="Summary"/> is the line for people.
/// </summary>
public sealed record SweepLiveness(bool OwnerGone, string Summary)
{
    /// <summary>
    /// Null unless the sweep's phase is Running (a finished or interrupted sweep says so itself).
    /// <paramref name="owner"/> null: the sweep was never claimed (recorded before ownership
    /// claims existed, or its process died before claiming), so nobody owns it. Pure.
    /// </summary>
    /// <param name="journalArguments">What the resume hint adds to name the journal (<see cref="JournalSettings.CommandLine"/>), or "".</param>
    public static SweepLiveness? Of(string sweepId, bool running, SweepOwner? owner, string thisHost, Func<int, DateTimeOffset, bool> processAlive, TimeSpan lapse, string journalArguments = "")
    {
        if (!running) return null;
        var resume = journalArguments.Length == 0 ? $"sweep resume {sweepId}" : $"sweep resume {sweepId} {journalArguments}";
        if (owner is null) return new SweepLiveness(true, $"interrupted: no process owns it; continue with: {resume}");
        if (owner.WhyGone(thisHost, processAlive, lapse) is { } why)
            return new SweepLiveness(true, $"interrupted: no process owns it since {owner.RenewedAt.ToLocalTime():yyyy-MM-dd HH:mm:ss} ({why}); continue with: {resume}");
        return new SweepLiveness(false, $"running: owned by {owner.Owner.Describe()} since {owner.Since.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
    }

    /// <summary>Reads the owner of <paramref name="sweepId"/> from the journal and judges it from this machine.</summary>
    public static async Task<SweepLiveness?> ReadAsync(JournalSettings journal, string sweepId, bool running) =>
        running ? Of(sweepId, running, await SweepOwnership.ReadAsync(journal, sweepId), Environment.MachineName, SweepOwnership.ProcessAlive, OwnershipSettings.Current.Lapse, journal.CommandLine) : null;
}

/// <summary>
/// Who owns which sweep, in a table of the journal's own database (<c>sweep_owner</c>, SQLite and
/// PostgreSQL alike): a sweep has one owner at a time, claimed before anything else is written,
/// renewed while it runs, released at the end. A process whose claim is refused stops at once
/// (<see cref="InvalidInputException"/>); a claim whose owner died lapses (<see cref="SweepOwner.WhyGone"/>).
/// </summary>
public static class SweepOwnership
{
    private const string Table = "sweep_owner";

    /// <summary>Whether a process of this host with this id and start time (to the second) still runs.</summary>
    public static bool ProcessAlive(int pid, DateTimeOffset startedAt)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            if (process.HasExited || IsZombie(pid)) return false;
            return Math.Abs((process.StartTime.ToUniversalTime() - startedAt.UtcDateTime).TotalSeconds) < 2;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    /// <summary>A process killed a moment ago lingers as a zombie (state Z in /proc/PID/stat) until it is reaped: it owns nothing any more.</summary>
    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] is 'Z' or 'X';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return !OperatingSystem.IsLinux() ? false : !Directory.Exists($"/proc/{pid}");
        }
    }

    /// <summary>
    /// Claims <paramref name="sweepId"/> for <paramref name="me"/>: a sweep never claimed, or one
    /// whose owner released it or is gone (<see cref="SweepOwner.WhyGone"/>), is taken. Throws
    /// <see cref="InvalidInputException"/> naming the owner (host, pid, since when) when another live
    /// process holds it. Whether the sweep exists is the coordinator's business, not the claim's.
    /// </summary>
    public static async Task ClaimAsync(JournalSettings journal, string sweepId, OwnerIdentity me, OwnershipSettings settings, Func<string, bool>? leftCluster = null)
    {
        await using var connection = await OpenAsync(journal);
        for (int tries = 1; ; tries++)
        {
            await using var transaction = await BeginAsync(connection);
            var current = await ReadAsync(connection, journal, sweepId, transaction, forUpdate: true);
            if (current is null)
            {
                // Two claimants may both see no row: the insert decides (the loser reads the winner's row next time round).
                int inserted = await ExecuteAsync(connection, transaction,
                    $"INSERT INTO {Table} (sweep_id, token, host, pid, process_start, address, since, renewed_at, released) VALUES (@id, @token, @host, @pid, @start, @address, {Now(journal)}, {Now(journal)}, 0) ON CONFLICT (sweep_id) DO NOTHING",
                    ("id", sweepId), ("token", me.Token), ("host", me.Host), ("pid", me.Pid), ("start", Text(me.ProcessStart)), ("address", (object?)me.Address ?? DBNull.Value));
                await transaction.CommitAsync();
                if (inserted == 1) return;
                if (tries == 3) throw new InvalidInputException($"sweep '{sweepId}' is being claimed by another process at this moment; see 'sweep status {sweepId}'");
                continue;
            }
            if (current.Owner.Token == me.Token)
            {
                await ExecuteAsync(connection, transaction, $"UPDATE {Table} SET renewed_at = {Now(journal)}, released = 0 WHERE sweep_id = @id AND token = @token", ("id", sweepId), ("token", me.Token));
                await transaction.CommitAsync();
                return;
            }
            if (current.WhyGone(Environment.MachineName, ProcessAlive, settings.Lapse, leftCluster) is null) throw new InvalidInputException(Owned(journal, sweepId, current));
            int taken = await ExecuteAsync(connection, transaction,
                $"UPDATE {Table} SET token = @token, host = @host, pid = @pid, process_start = @start, address = @address, since = {Now(journal)}, renewed_at = {Now(journal)}, released = 0 WHERE sweep_id = @id AND token = @old",
                ("id", sweepId), ("old", current.Owner.Token), ("token", me.Token), ("host", me.Host), ("pid", me.Pid), ("start", Text(me.ProcessStart)), ("address", (object?)me.Address ?? DBNull.Value));
            await transaction.CommitAsync();
            if (taken == 1) return;
            if (tries == 3) throw new InvalidInputException($"sweep '{sweepId}' is being claimed by another process at this moment; see 'sweep status {sweepId}'");
        }
    }

    /// <summary>
    /// Takes over <paramref name="sweepId"/> for <paramref name="me"/> when its owner is gone (a
    /// cluster's coordinator moving to another node): true when <paramref name="me"/> holds it
    /// afterwards, false when another live process does (the caller must not run the sweep).
    /// </summary>
    public static async Task<(bool Held, SweepOwner? Other)> AdoptAsync(JournalSettings journal, string sweepId, OwnerIdentity me, OwnershipSettings settings, Func<string, bool>? leftCluster)
    {
        try
        {
            await ClaimAsync(journal, sweepId, me, settings, leftCluster);
            return (true, null);
        }
        catch (InvalidInputException)
        {
            return (false, await ReadAsync(journal, sweepId));
        }
    }

    /// <summary>
    /// Renews <paramref name="me"/>'s claim: false when the journal says another process owns the
    /// sweep now (this one was presumed dead and must stop). Throws when the journal cannot be reached.
    /// </summary>
    public static async Task<bool> RenewAsync(JournalSettings journal, string sweepId, OwnerIdentity me)
    {
        await using var connection = await OpenAsync(journal);
        int rows = await ExecuteAsync(connection, null,
            $"UPDATE {Table} SET renewed_at = {Now(journal)}, released = 0 WHERE sweep_id = @id AND token = @token",
            ("id", sweepId), ("token", me.Token));
        return rows == 1;
    }

    /// <summary>
    /// Lets go of the sweep as the process ends; <paramref name="forget"/> removes the claim
    /// altogether (nothing of the sweep was persisted, so the id stays free). Errors are
    /// swallowed: an unreleased claim lapses by itself.
    /// </summary>
    public static async Task ReleaseAsync(JournalSettings journal, string sweepId, OwnerIdentity me, bool forget = false)
    {
        try
        {
            await using var connection = await OpenAsync(journal);
            await ExecuteAsync(connection, null,
                forget
                    ? $"DELETE FROM {Table} WHERE sweep_id = @id AND token = @token"
                    : $"UPDATE {Table} SET released = 1, renewed_at = {Now(journal)} WHERE sweep_id = @id AND token = @token",
                ("id", sweepId), ("token", me.Token));
        }
        catch (DbException)
        {
            // The journal is gone: the claim lapses (same host: at once, as this process ends).
        }
    }

    /// <summary>The sweep's owner as the journal records it, or null when it was never claimed (also for sweeps recorded before ownership existed).</summary>
    public static async Task<SweepOwner?> ReadAsync(JournalSettings journal, string sweepId)
    {
        await using var connection = await OpenAsync(journal, createTable: false);
        try
        {
            return await ReadAsync(connection, journal, sweepId, null, forUpdate: false);
        }
        catch (DbException e) when (e is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 1 } || e is Npgsql.PostgresException { SqlState: "42P01" })
        {
            // No claim was ever made in this journal (written before ownership claims existed): nobody owns anything.
            return null;
        }
    }

    /// <summary>
    /// The claim as a coordinator keeps it (<see cref="SweepLease"/>): adopted once the
    /// coordinator has recovered, then renewed. <paramref name="leftCluster"/> says whether a
    /// cluster address has left this node's cluster (a coordinator moving after its node died).
    /// </summary>
    public static Func<string, SweepLease> LeaseFor(JournalSettings journal, OwnerIdentity me, OwnershipSettings settings, Func<string, bool>? leftCluster = null) =>
        sweepId => new SweepLease(
            Adopt: async () =>
            {
                var (held, other) = await AdoptAsync(journal, sweepId, me, settings, leftCluster);
                return new LeaseCheck(held, other is null ? null : $"{other.Owner.Describe()} since {other.Since.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
            },
            Renew: async () =>
            {
                if (await RenewAsync(journal, sweepId, me)) return new LeaseCheck(true);
                var other = await ReadAsync(journal, sweepId);
                return new LeaseCheck(false, other is null ? "its claim was removed" : $"{other.Owner.Describe()} holds it since {other.Since.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
            },
            settings.RenewEvery,
            settings.Lapse);

    /// <summary>Whether <paramref name="sweepId"/> was ever claimed (default sweep ids are made unique with it).</summary>
    public static async Task<bool> ExistsAsync(JournalSettings journal, string sweepId) => await ReadAsync(journal, sweepId) is not null;

    private static string Owned(JournalSettings journal, string sweepId, SweepOwner owner) =>
        $"sweep '{sweepId}' is owned by {owner.Owner.Describe()} since {owner.Since.ToLocalTime():yyyy-MM-dd HH:mm:ss} (renewed {owner.RenewedAgo.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s ago): one process runs a sweep at a time; watch it with 'sweep watch {sweepId} {journal.CommandLine}'";

    private static async Task<SweepOwner?> ReadAsync(DbConnection connection, JournalSettings journal, string sweepId, DbTransaction? transaction, bool forUpdate)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = journal.IsPostgres
            ? $"SELECT token, host, pid, process_start, address, since, renewed_at, released, EXTRACT(EPOCH FROM (now() - renewed_at)) FROM {Table} WHERE sweep_id = @id{(forUpdate ? " FOR UPDATE" : "")}"
            : $"SELECT token, host, pid, process_start, address, since, renewed_at, released, (julianday('now') - julianday(renewed_at)) * 86400.0 FROM {Table} WHERE sweep_id = @id";
        Add(command, "id", sweepId);
        await using var reader = await command.ExecuteReaderAsync();
        if (!await reader.ReadAsync()) return null;
        var identity = new OwnerIdentity(
            reader.GetString(0),
            reader.GetString(1),
            Convert.ToInt32(reader.GetValue(2), CultureInfo.InvariantCulture),
            DateTimeOffset.Parse(reader.GetString(3), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
            reader.IsDBNull(4) ? null : reader.GetString(4));
        return new SweepOwner(
            identity,
            Timestamp(reader.GetValue(5)),
            Timestamp(reader.GetValue(6)),
            TimeSpan.FromSeconds(Math.Max(0, Convert.ToDouble(reader.GetValue(8), CultureInfo.InvariantCulture))),
            Convert.ToInt32(reader.GetValue(7), CultureInfo.InvariantCulture) != 0);
    }

    private static string Text(DateTimeOffset time) => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset Timestamp(object value) => value switch
    {
        DateTime time => new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)),
        DateTimeOffset time => time,
        _ => DateTimeOffset.Parse(Convert.ToString(value, CultureInfo.InvariantCulture)!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
    };

    /// <summary>The journal's clock: PostgreSQL's transaction time, or SQLite's UTC text with milliseconds.</summary>
    private static string Now(JournalSettings journal) => journal.IsPostgres ? "now()" : "strftime('%Y-%m-%d %H:%M:%f', 'now')";

    private static async Task<DbConnection> OpenAsync(JournalSettings journal, bool createTable = true)
    {
        var connection = journal.CreateConnection();
        try
        {
            await connection.OpenAsync();
            if (!createTable) return connection;
            await using var create = connection.CreateCommand();
            create.CommandText = journal.IsPostgres
                ? $"CREATE TABLE IF NOT EXISTS {Table} (sweep_id TEXT PRIMARY KEY, token TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, process_start TEXT NOT NULL, address TEXT NULL, since TIMESTAMPTZ NOT NULL, renewed_at TIMESTAMPTZ NOT NULL, released INTEGER NOT NULL)"
                : $"CREATE TABLE IF NOT EXISTS {Table} (sweep_id TEXT PRIMARY KEY, token TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, process_start TEXT NOT NULL, address TEXT NULL, since TEXT NOT NULL, renewed_at TEXT NOT NULL, released INTEGER NOT NULL)";
            try
            {
                await create.ExecuteNonQueryAsync();
            }
            catch (Npgsql.PostgresException e) when (e.SqlState is "23505" or "42P07" or "42710")
            {
                // Two processes created the table at the same moment (PostgreSQL's IF NOT EXISTS is not atomic: 42P07 for the table, 42710 for its row type, 23505 in pg_type): it is there.
            }
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>SQLite: BEGIN IMMEDIATE takes the write lock at once, so two claimants are serialised; PostgreSQL: SELECT … FOR UPDATE does.</summary>
    private static async Task<DbTransaction> BeginAsync(DbConnection connection)
    {
        if (connection is Microsoft.Data.Sqlite.SqliteConnection sqlite) return sqlite.BeginTransaction(deferred: false);
        return await connection.BeginTransactionAsync();
    }

    private static async Task<int> ExecuteAsync(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters) Add(command, name, value);
        return await command.ExecuteNonQueryAsync();
    }

    private static void Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@" + name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }
}
