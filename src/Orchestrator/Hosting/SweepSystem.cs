using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Sweep.Protocol.Serialization;

namespace Sweep.Orchestrator.Hosting;

/// <summary>
/// Where a sweep's journal and checkpoints live. The journal is the SQLite file DATA-DIR/journal.db
/// unless <paramref name="Journal"/> names another SQLite file or is a PostgreSQL connection string
/// (<c>Host=…;Database=…;Username=…</c>), which every node of a cluster can reach.
/// </summary>
public sealed record JournalSettings(string DataDirectory, string? Journal = null)
{
    public static string DefaultDataDirectory => Path.Combine(Environment.CurrentDirectory, "sweep-data");

    public bool IsPostgres => Journal is not null && Journal.Contains("Host=", StringComparison.OrdinalIgnoreCase);

    public string JournalFile => IsPostgres ? "" : Path.GetFullPath(Journal ?? Path.Combine(DataDirectory, "journal.db"));

    public string CheckpointDirectory => Path.Combine(DataDirectory, "checkpoints");

    public string ConnectionString => IsPostgres ? Journal! : $"Data Source={JournalFile};Pooling=True";

    public string ProviderName => IsPostgres ? LinqToDB.ProviderName.PostgreSQL15 : LinqToDB.ProviderName.SQLiteMS;

    /// <summary>What to tell people: the file, or the PostgreSQL server and database (never the password).</summary>
    public string Description
    {
        get
        {
            if (!IsPostgres) return JournalFile;
            var builder = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = Journal };
            string Part(string key) => builder.TryGetValue(key, out var value) ? value?.ToString() ?? "" : "";
            return $"PostgreSQL {Part("Host")}:{(Part("Port") is { Length: > 0 } port ? port : "5432")}/{Part("Database")}";
        }
    }

    /// <summary>Whether a journal is there to read: a PostgreSQL server is assumed to be (it says so itself when it is not).</summary>
    public bool Exists => IsPostgres || File.Exists(JournalFile);

    /// <summary>The command-line form of these settings, for the resume hint.</summary>
    public string CommandLine => IsPostgres ? $"--journal \"{Journal}\"" : Journal is null ? $"--data-dir {DataDirectory}" : $"--journal {JournalFile}";
}

/// <summary>
/// A running actor system configured for sweeps: hocon/akka.conf, Akka.Persistence.Sql on the
/// journal, and the sweep serializer for every event, snapshot and message.
/// </summary>
public static class SweepAkkaConfiguration
{
    private static string AkkaConfigFile => Path.Combine(AppContext.BaseDirectory, "hocon", "akka.conf");

    public static Akka.Configuration.Config AkkaConfig => Akka.Configuration.ConfigurationFactory.ParseString(File.ReadAllText(AkkaConfigFile));

    /// <summary>hocon/akka.conf, the SQL journal and snapshot store on <paramref name="journal"/>, and the sweep serializer.</summary>
    public static AkkaConfigurationBuilder WithSweepJournal(this AkkaConfigurationBuilder akka, JournalSettings journal) =>
        akka.AddHocon(AkkaConfig, HoconAddMode.Prepend)
            // SQLite has one writer: more parallel writers only contend for its lock (PostgreSQL keeps Akka's default).
            .AddHocon(journal.IsPostgres ? "akka.persistence.journal.sql.parallelism = 3" : "akka.persistence.journal.sql.parallelism = 1", HoconAddMode.Prepend)
            .WithSqlPersistence(journal.ConnectionString, journal.ProviderName)
            .WithCustomSerializer("sweep", SweepSerializer.SerializableTypes, system => new SweepSerializer(system));
}

public sealed class SweepSystem : IAsyncDisposable
{
    private readonly IHost host;

    private SweepSystem(IHost host)
    {
        this.host = host;
        System = host.Services.GetRequiredService<ActorSystem>();
    }

    public ActorSystem System { get; }

    /// <param name="logName">Write this process's log to DATA-DIR/logs/NAME.json (null: console only).</param>
    public static async Task<SweepSystem> StartAsync(JournalSettings journal, ClusterOptions? cluster = null, string? logName = null)
    {
        var logging = SweepLogging.Configure(journal, logName, SweepAkkaConfiguration.AkkaConfig);
        Directory.CreateDirectory(journal.DataDirectory);
        if (!journal.IsPostgres) UseWriteAheadLog(journal);
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddAkka(ClusterOptions.SystemName, akka =>
        {
            akka.WithSweepJournal(journal);
            akka.AddHocon(logging, HoconAddMode.Prepend);
            cluster?.Configure(akka);
        });
        var host = builder.Build();
        await host.StartAsync();
        return new SweepSystem(host);
    }

    /// <summary>
    /// SQLite in write-ahead-log mode (a setting the file keeps): one sync per commit instead of
    /// several, and readers (status, watch) never block the writer.
    /// </summary>
    private static void UseWriteAheadLog(JournalSettings journal)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(journal.JournalFile)!);
        try
        {
            using var connection = new Microsoft.Data.Sqlite.SqliteConnection(journal.ConnectionString);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA journal_mode=WAL;";
            command.ExecuteNonQuery();
        }
        catch (Microsoft.Data.Sqlite.SqliteException)
        {
            // Another process holds the file in another mode right now: it keeps working as it is.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await host.StopAsync();
        host.Dispose();
        await Serilog.Log.CloseAndFlushAsync();
    }
}
