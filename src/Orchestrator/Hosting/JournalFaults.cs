using System.Net.Sockets;

namespace Sweep.Orchestrator.Hosting;

/// <summary>A journal failure in words: what went wrong, and what to do before `sweep resume`.</summary>
/// <param name="Cause">A phrase naming the cause, e.g. "disk full (SQLite error 13: database or disk is full)".</param>
/// <param name="Advice">What the user does about it, e.g. "free space".</param>
public sealed record JournalFault(string Cause, string Advice);

/// <summary>
/// Turns what the journal's driver threw (Microsoft.Data.Sqlite, Npgsql, Akka.Persistence's circuit
/// breaker) into a <see cref="JournalFault"/>: one line for people, never a stack trace.
/// </summary>
public static class JournalFaults
{
    /// <summary>The cause of <paramref name="error"/> (the innermost database or network error in it) and the advice for it.</summary>
    public static JournalFault Describe(Exception error)
    {
        foreach (var e in Chain(error))
        {
            switch (e)
            {
                case Microsoft.Data.Sqlite.SqliteException sqlite:
                    return sqlite.SqliteErrorCode switch
                    {
                        13 => new($"disk full ({Message(sqlite)})", "free space"),
                        5 or 6 => new($"the database stayed locked by another process for longer than the busy retry ({Message(sqlite)})", "stop the process that holds the journal locked (or raise sweep.journal.busy-retry)"),
                        8 => new($"the journal is read-only ({Message(sqlite)})", "make the journal file and its folder writable"),
                        10 or 14 => new($"the journal file could not be written or opened ({Message(sqlite)})", "check the disk and the journal file's folder"),
                        11 or 26 => new($"the journal file is damaged ({Message(sqlite)})", "restore the journal file from a copy"),
                        19 => new($"a write conflicted with another writer of the same sweep ({Message(sqlite)})", "make sure one process runs the sweep ('sweep status')"),
                        _ => new(Message(sqlite), "fix the cause"),
                    };
                case Npgsql.PostgresException postgres:
                    return postgres.SqlState switch
                    {
                        "23505" => new($"a write conflicted with another writer of the same sweep (PostgreSQL {postgres.SqlState}: {postgres.MessageText})", "make sure one process runs the sweep ('sweep status')"),
                        "53100" => new($"the PostgreSQL server's disk is full ({postgres.MessageText})", "free space on the server"),
                        "57P01" or "57P02" or "57P03" => new($"the PostgreSQL server shut down or is starting ({postgres.MessageText})", "start the PostgreSQL server again"),
                        _ => new($"PostgreSQL {postgres.SqlState}: {postgres.MessageText}", "fix the cause on the server"),
                    };
                case Npgsql.NpgsqlException npgsql when npgsql.InnerException is SocketException or IOException or TimeoutException || npgsql.Message.Contains("Failed to connect", StringComparison.OrdinalIgnoreCase):
                    return new($"the PostgreSQL server cannot be reached ({OneLine(npgsql.Message)})", "start the PostgreSQL server (or correct Host and Port in --journal, or fix the network)");
                case Akka.Pattern.OpenCircuitException:
                    continue;
                case System.Runtime.Serialization.SerializationException unreadable:
                    return new($"an event in the journal cannot be read ({OneLine(unreadable.Message)})", "restore the journal from a copy");
                // ENOSPC as .NET words it: "No space left on device : 'PATH'", or for a preallocated file "Failed to create 'PATH' with allocation size 'N' because the disk was full."
                case IOException io when io.HResult == 28 || io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase) || io.Message.Contains("the disk was full", StringComparison.OrdinalIgnoreCase):
                    return new($"disk full ({OneLine(io.Message)})", "free space");
            }
        }
        var innermost = Chain(error).Last();
        return new($"{innermost.GetType().Name}: {OneLine(innermost.Message)}", "fix the cause");
    }

    private static IEnumerable<Exception> Chain(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            if (e is AggregateException aggregate && aggregate.InnerExceptions.Count > 0)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Chain)) yield return inner;
                yield break;
            }
            yield return e;
        }
    }

    /// <summary>"SQLite error 13: database or disk is full" from the driver's "SQLite Error 13: 'database or disk is full'.".</summary>
    private static string Message(Microsoft.Data.Sqlite.SqliteException e)
    {
        var text = OneLine(e.Message);
        int open = text.IndexOf('\''), close = text.LastIndexOf('\'');
        if (open >= 0 && close > open) text = text[(open + 1)..close];
        return $"SQLite error {e.SqliteErrorCode}: {text}";
    }

    private static string OneLine(string text) => text.Split('\n')[0].Trim();
}

/// <summary>
/// The journal could not be reached or written, and the command stopped cleanly: its message is
/// the one line for people (journal, cause, what to do); exit code 1, no stack trace.
/// </summary>
public sealed class JournalUnavailableException(string message) : Exception(message);

/// <summary>
/// A fault of this installation or of what it runs with, not of the user's input: a program file
/// missing next to `sweep`, no cluster node answering at the --join address. One line saying what
/// to do, exit code 1 (as for <see cref="JournalUnavailableException"/>).
/// </summary>
public sealed class SetupFaultException(string message) : Exception(message);
