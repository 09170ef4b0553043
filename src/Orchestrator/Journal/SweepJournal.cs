using System.Data.Common;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Protocol.Events;
using Sweep.Protocol.Serialization;

namespace Sweep.Orchestrator.Journal;

/// <summary>
/// Reads sweeps from the journal without changing it, and without an actor system: `status`,
/// `report`, `watch`, the dashboard and the run's own progress view read Akka.Persistence.Sql's
/// tables directly (<c>journal</c>: persistence_id, sequence_number, deleted, message, manifest,
/// identifier; <c>snapshot</c>: persistence_id, sequence_number, snapshot, manifest, serializer_id;
/// the plugin's default table mapping, the same on SQLite and PostgreSQL) and decode each payload
/// with <see cref="SweepSerializer.Deserialize"/>, the one decoder Akka also uses. The state is
/// rebuilt the way the coordinator recovers it (latest snapshot, then the events after it, through
/// <see cref="SweepState.Apply"/>): SweepCoordinatorTests compares the two.
/// </summary>
public static class SweepJournal
{
    /// <summary>A sweep's state as read from the journal, and the sequence number of the last event in it (what a later read continues from).</summary>
    public sealed record SweepRead(SweepState State, long SequenceNr);

    /// <summary>Akka.Persistence.Sql's table of events.</summary>
    private const string EventTable = "journal";

    /// <summary>Akka.Persistence.Sql's table of snapshots.</summary>
    private const string SnapshotTable = "snapshot";

    /// <summary>
    /// The sweep's current state (from its latest snapshot and the events after it), or null when the journal has no such sweep.
    /// </summary>
    /// <exception cref="JournalUnavailableException">The journal could not be read (locked past the busy retry, unreachable, damaged): one line saying why and what to do.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> fired (Ctrl+C, SIGTERM).</exception>
    /// <param name="toSequenceNr">Read the state as it was after this event (a subscriber's <c>SweepSubscribed.SequenceNr</c>); default: all of it.</param>
    public static async Task<SweepState?> ReadAsync(JournalSettings journal, string sweepId, CancellationToken cancellation = default, long toSequenceNr = long.MaxValue) =>
        (await ReadAtAsync(journal, sweepId, cancellation, toSequenceNr))?.State;

    /// <summary>The same, with the sequence number of the last event read (continue from it with <see cref="EventsAsync"/>).</summary>
    /// <exception cref="JournalUnavailableException">The journal could not be read.</exception>
    public static Task<SweepRead?> ReadAtAsync(JournalSettings journal, string sweepId, CancellationToken cancellation = default, long toSequenceNr = long.MaxValue) =>
        Guard<SweepRead?>(journal, cancellation, null, async connection =>
        {
            var persistenceId = SweepCoordinator.PersistenceIdFor(sweepId);
            SweepState? state = null;
            long from = 0, last = 0;
            await using (var command = Command(connection,
                $"SELECT sequence_number, snapshot, manifest, serializer_id FROM {SnapshotTable} WHERE persistence_id = @id AND sequence_number <= @to ORDER BY sequence_number DESC LIMIT 1",
                ("id", persistenceId), ("to", toSequenceNr)))
            await using (var reader = await command.ExecuteReaderAsync(cancellation))
            {
                if (await reader.ReadAsync(cancellation))
                {
                    from = reader.GetInt64(0);
                    state = SweepState.FromSnapshot((SweepSnapshot)Decode(reader, 1, 2, 3, persistenceId, from));
                }
            }
            last = from;
            await foreach (var (sequenceNr, e) in Events(connection, persistenceId, from, toSequenceNr, cancellation))
            {
                if (e is SweepStarted started) state = SweepState.Start(started);
                else state?.Apply(e);
                last = sequenceNr;
            }
            return state is null ? null : new SweepRead(state, last);
        });

    /// <summary>The ids of every sweep in the journal, in the order they were first written.</summary>
    /// <exception cref="JournalUnavailableException">The journal could not be read.</exception>
    public static Task<IReadOnlyList<string>> ListAsync(JournalSettings journal, CancellationToken cancellation = default) =>
        Guard<IReadOnlyList<string>>(journal, cancellation, [], async connection =>
        {
            var prefix = SweepCoordinator.PersistenceIdFor("");
            var ids = new List<string>();
            await using var command = Command(connection, $"SELECT persistence_id FROM {EventTable} GROUP BY persistence_id ORDER BY MIN(ordering)");
            await using var reader = await command.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation))
            {
                var id = reader.GetString(0);
                if (id.StartsWith(prefix, StringComparison.Ordinal)) ids.Add(id[prefix.Length..]);
            }
            return ids;
        });

    /// <summary>
    /// A sweep's events in the order they were persisted (empty for no such sweep): every one, or
    /// those after <paramref name="afterSequenceNr"/> up to <paramref name="toSequenceNr"/>.
    /// </summary>
    /// <exception cref="JournalUnavailableException">The journal could not be read.</exception>
    public static Task<IReadOnlyList<ISweepEvent>> EventsAsync(JournalSettings journal, string sweepId, CancellationToken cancellation = default, long afterSequenceNr = 0, long toSequenceNr = long.MaxValue) =>
        Guard<IReadOnlyList<ISweepEvent>>(journal, cancellation, [], async connection =>
        {
            var events = new List<ISweepEvent>();
            await foreach (var (_, e) in Events(connection, SweepCoordinator.PersistenceIdFor(sweepId), afterSequenceNr, toSequenceNr, cancellation)) events.Add(e);
            return events;
        });

    /// <summary>
    /// Follows a sweep as it is persisted, from any process that reaches the journal: hands every event
    /// there is to <paramref name="onEvent"/> in order, then asks for new ones every
    /// <see cref="JournalTimings.PollEvery"/>, until <paramref name="onEvent"/> returns false or
    /// <paramref name="cancellation"/> fires (then it returns normally).
    /// </summary>
    /// <param name="afterSequenceNr">Start after this event (a <see cref="SweepRead.SequenceNr"/>: what that read already holds); default: from the first.</param>
    /// <exception cref="JournalUnavailableException">A read failed (each poll is one read, with the driver's busy retry).</exception>
    public static async Task FollowAsync(JournalSettings journal, string sweepId, Func<ISweepEvent, bool> onEvent, CancellationToken cancellation, long afterSequenceNr = 0)
    {
        var persistenceId = SweepCoordinator.PersistenceIdFor(sweepId);
        long seen = afterSequenceNr;
        try
        {
            while (true)
            {
                var more = await Guard<IReadOnlyList<(long, ISweepEvent)>>(journal, cancellation, [], async connection =>
                {
                    var batch = new List<(long, ISweepEvent)>();
                    await foreach (var each in Events(connection, persistenceId, seen, long.MaxValue, cancellation)) batch.Add(each);
                    return batch;
                });
                foreach (var (sequenceNr, e) in more)
                {
                    seen = sequenceNr;
                    if (!onEvent(e)) return;
                }
                await Task.Delay(JournalTimings.Current.PollEvery, cancellation);
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
        }
    }

    /// <summary>A sweep's events after <paramref name="afterSequenceNr"/> up to <paramref name="toSequenceNr"/>, with their sequence numbers, in order (deleted ones skipped).</summary>
    private static async IAsyncEnumerable<(long SequenceNr, ISweepEvent Event)> Events(DbConnection connection, string persistenceId, long afterSequenceNr, long toSequenceNr,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellation)
    {
        await using var command = Command(connection,
            $"SELECT sequence_number, message, manifest, identifier FROM {EventTable} WHERE persistence_id = @id AND sequence_number > @after AND sequence_number <= @to AND NOT deleted ORDER BY sequence_number",
            ("id", persistenceId), ("after", afterSequenceNr), ("to", toSequenceNr));
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
        {
            long sequenceNr = reader.GetInt64(0);
            yield return (sequenceNr, Decode(reader, 1, 2, 3, persistenceId, sequenceNr) as ISweepEvent
                ?? throw new System.Runtime.Serialization.SerializationException($"{persistenceId} #{sequenceNr}: manifest '{reader.GetString(2)}' is not an event"));
        }
    }

    /// <summary>One payload, decoded by the sweep serializer (anything written by another serializer is refused: it is not a sweep's).</summary>
    private static object Decode(DbDataReader reader, int payload, int manifest, int serializer, string persistenceId, long sequenceNr)
    {
        int serializerId = reader.IsDBNull(serializer) ? 0 : Convert.ToInt32(reader.GetValue(serializer), System.Globalization.CultureInfo.InvariantCulture);
        if (serializerId != SweepSerializer.SerializerId)
            throw new System.Runtime.Serialization.SerializationException($"{persistenceId} #{sequenceNr}: written by serializer {serializerId}, not the sweep serializer ({SweepSerializer.SerializerId})");
        return SweepSerializer.Deserialize(reader.GetFieldValue<byte[]>(payload), reader.IsDBNull(manifest) ? "" : reader.GetString(manifest));
    }

    private static DbCommand Command(DbConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = "@" + name;
            parameter.Value = value;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    /// <summary>
    /// Runs one read on a connection of its own. A journal whose tables are not there yet (no sweep
    /// was ever written) reads as empty; any other failure is one line about the journal.
    /// </summary>
    private static async Task<T> Guard<T>(JournalSettings journal, CancellationToken cancellation, T empty, Func<DbConnection, Task<T>> read)
    {
        try
        {
            await using var connection = journal.CreateConnection();
            await connection.OpenAsync(cancellation);
            return await read(connection);
        }
        catch (Exception e) when (NoTables(e))
        {
            return empty;
        }
        catch (Exception e) when (e is not Protocol.InvalidInputException && (e is not OperationCanceledException || !cancellation.IsCancellationRequested))
        {
            var fault = JournalFaults.Describe(e);
            throw new JournalUnavailableException($"journal {journal.Description}: {fault.Cause}; nothing was changed, {fault.Advice} and try again");
        }
    }

    /// <summary>SQLite's "no such table" (error 1) or PostgreSQL's undefined_table (42P01): Akka creates the tables with the first sweep.</summary>
    private static bool NoTables(Exception e) =>
        e is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 1 } sqlite && sqlite.Message.Contains("no such table", StringComparison.Ordinal)
        || e is Npgsql.PostgresException { SqlState: "42P01" };
}
