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

    /// <summary>Whether <see cref="Journal"/> is a PostgreSQL connection string (<see cref="IsConnectionString"/>), decided once.</summary>
    public bool IsPostgres { get; } = Journal is not null && IsConnectionString(Journal);

    /// <summary>The keys a PostgreSQL connection string is recognised by when it starts with one.</summary>
    private static readonly string[] ConnectionStringKeys = ["Host", "Server", "Port", "Database", "Username", "User ID", "User", "Password"];

    /// <summary>
    /// Whether <paramref name="journal"/> (the --journal text) is meant as a connection string rather
    /// than a SQLite file: it starts with a connection-string key and '=' (<c>Host=</c>, <c>Server=</c>,
    /// <c>Database=</c>, …), or it holds '=' and ';' with no path separator before its first '='
    /// (<c>Host=;Database</c>, <c>sslmode=require;Host=db</c>). A file that exists is always a SQLite journal,
    /// whatever its name, and a path with a directory (<c>./a=b;c.db</c>, <c>/data/x=1;y.db</c>) is one too.
    /// </summary>
    public static bool IsConnectionString(string journal)
    {
        var text = journal.Trim();
        if (text.Length == 0 || File.Exists(journal)) return false;
        int equals = text.IndexOf('=');
        if (equals <= 0) return false;
        var key = text[..equals].Trim();
        if (ConnectionStringKeys.Any(k => k.Equals(key, StringComparison.OrdinalIgnoreCase))) return true;
        return text.Contains(';') && key.IndexOfAny(['/', '\\']) < 0;
    }

    /// <summary>
    /// Why <see cref="Journal"/> is not a usable PostgreSQL connection string (Npgsql cannot parse it,
    /// a value has the wrong type, or it names no host), without any part of its password; null when it
    /// is one, or when the journal is a SQLite file.
    /// </summary>
    public string? ConnectionStringProblem()
    {
        if (!IsPostgres) return null;
        string reason;
        try
        {
            var builder = new Npgsql.NpgsqlConnectionStringBuilder(Journal);
            if (!string.IsNullOrWhiteSpace(builder.Host)) return null;
            reason = "it names no host (Host=…)";
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException)
        {
            // Npgsql says "Couldn't set port (Parameter 'port')"; the cause ("abc is not a valid value for Int32") is inside.
            var first = e.Message.Split('\n')[0].Trim();
            reason = e.InnerException is { } cause ? $"{first}: {cause.Message.Split('\n')[0].Trim()}" : first;
        }
        return WithoutPassword(reason, Journal!);
    }

    /// <summary>
    /// <paramref name="reason"/> with every piece of the text after <c>Password=</c> (or <c>Pwd=</c>) in
    /// <paramref name="connectionString"/> masked: a password with a ';' in it would otherwise come back as a "keyword" in Npgsql's message.
    /// </summary>
    private static string WithoutPassword(string reason, string connectionString)
    {
        var match = System.Text.RegularExpressions.Regex.Match(connectionString, @"(?i)\b(password|pwd)\s*=");
        if (!match.Success) return reason;
        var secrets = connectionString[(match.Index + match.Length)..]
            .Split([';', '='], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(piece => piece.Length > 0)
            .OrderByDescending(piece => piece.Length);
        foreach (var secret in secrets) reason = reason.Replace(secret, "***", StringComparison.OrdinalIgnoreCase);
        return reason;
    }

    public string JournalFile => IsPostgres ? "" : Path.GetFullPath(Journal ?? Path.Combine(DataDirectory, "journal.db"));

    public string CheckpointDirectory => Path.Combine(DataDirectory, "checkpoints");

    /// <summary>SQLite: the driver retries a busy or locked database for <see cref="JournalTimings.BusyRetry"/> (its command timeout) before a write fails.</summary>
    /// <remarks>The file's path is quoted by the builder, so a name with ';' or '=' in it stays one path.</remarks>
    public string ConnectionString => IsPostgres
        ? Journal!
        : new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder
        {
            DataSource = JournalFile,
            Pooling = true,
            DefaultTimeout = (int)Math.Ceiling(JournalTimings.Current.BusyRetry.TotalSeconds),
        }.ToString();

    public string ProviderName => IsPostgres ? LinqToDB.ProviderName.PostgreSQL15 : LinqToDB.ProviderName.SQLiteMS;

    /// <summary>A new, unopened connection to the journal's database (the one way every reader and the ownership table connect).</summary>
    public System.Data.Common.DbConnection CreateConnection() => IsPostgres
        ? new Npgsql.NpgsqlConnection(ConnectionString)
        : new Microsoft.Data.Sqlite.SqliteConnection(ConnectionString);

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
/// How a sweep's ownership is kept: the owner renews its claim every <paramref name="RenewEvery"/>;
/// a claim not renewed for <paramref name="Lapse"/> has lapsed (its owner is presumed dead) and
/// may be taken over. On one host a dead owner is seen at once (its process is gone), so
/// <paramref name="Lapse"/> matters only for an owner on another machine.
/// </summary>
public sealed record OwnershipSettings(TimeSpan RenewEvery, TimeSpan Lapse)
{
    /// <summary>From hocon/akka.conf (<c>sweep.journal.owner-renew-every</c>, <c>owner-lapse</c>; environment: SWEEP_OWNER_LAPSE).</summary>
    public static OwnershipSettings Current => JournalTimings.Current.Ownership;
}

/// <summary>
/// How long the journal's driver retries a write the database refuses as busy or locked (SQLite's
/// busy handler, through Microsoft.Data.Sqlite's command timeout) before it fails for good, and how
/// ownership claims are kept. From hocon/akka.conf's <c>sweep.journal</c>, where the environment
/// overrides them (SWEEP_JOURNAL_BUSY_RETRY, SWEEP_OWNER_LAPSE, SWEEP_OWNER_RENEW_EVERY, SWEEP_POLL_EVERY, e.g. "5s").
/// </summary>
/// <param name="PollEvery">How often a follower (`sweep watch`, the dashboard's event stream) asks the journal for new events (<c>sweep.journal.poll-every</c>, SWEEP_POLL_EVERY).</param>
public sealed record JournalTimings(TimeSpan BusyRetry, OwnershipSettings Ownership, TimeSpan PollEvery)
{
    private static readonly Lazy<JournalTimings> Loaded = new(() => FromConfig(SweepAkkaConfiguration.AkkaConfig));

    /// <summary>This process's timings.</summary>
    public static JournalTimings Current => Loaded.Value;

    /// <summary>
    /// Reads <c>sweep.journal</c>, each value overridden by its environment variable when that is set;
    /// a value that is not a positive duration is bad input naming where it came from (the variable or the key).
    /// </summary>
    public static JournalTimings FromConfig(Akka.Configuration.Config config)
    {
        (TimeSpan Value, string Source) Read(string key) =>
            SettingDurations.Read(config, "sweep.journal." + key, "SWEEP_" + (key == "busy-retry" ? "JOURNAL_" : "") + key.Replace('-', '_').ToUpperInvariant());

        var (renewEvery, renewSource) = Read("owner-renew-every");
        var (lapse, lapseSource) = Read("owner-lapse");
        if (lapse <= renewEvery)
            throw new Sweep.Protocol.InvalidInputException($"{lapseSource} ({lapse.TotalSeconds} s) must be longer than {renewSource} ({renewEvery.TotalSeconds} s): a claim must outlive the time between its renewals");
        return new JournalTimings(Read("busy-retry").Value, new OwnershipSettings(renewEvery, lapse), Read("poll-every").Value);
    }
}

/// <summary>
/// How a cluster node started with <c>--join</c> waits for the cluster: at most <paramref name="JoinTimeout"/>
/// for a node there to answer (then it gives up: one line, exit code 1). From hocon/akka.conf's
/// <c>sweep.cluster.join-timeout</c>, which the environment variable SWEEP_JOIN_TIMEOUT overrides (e.g. "5s").
/// </summary>
public sealed record ClusterTimings(TimeSpan JoinTimeout)
{
    private static readonly Lazy<ClusterTimings> Loaded = new(() => FromConfig(SweepAkkaConfiguration.AkkaConfig));

    /// <summary>This process's timings.</summary>
    public static ClusterTimings Current => Loaded.Value;

    /// <summary>Reads <c>sweep.cluster</c> the way <see cref="JournalTimings.FromConfig"/> reads <c>sweep.journal</c>.</summary>
    public static ClusterTimings FromConfig(Akka.Configuration.Config config) =>
        new(SettingDurations.Read(config, "sweep.cluster.join-timeout", "SWEEP_JOIN_TIMEOUT").Value);
}

/// <summary>The one way a <c>sweep.*</c> timing is read: from hocon/akka.conf, overridden by its environment variable.</summary>
internal static class SettingDurations
{
    /// <summary>
    /// The duration at <paramref name="path"/>, or the environment variable <paramref name="variable"/>'s
    /// when that is set; a value that is not a positive duration is bad input naming where it came from.
    /// </summary>
    public static (TimeSpan Value, string Source) Read(Akka.Configuration.Config config, string path, string variable)
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(variable);
        bool overridden = !string.IsNullOrWhiteSpace(fromEnvironment);
        var source = overridden ? variable : path;
        var text = overridden ? fromEnvironment!.Trim() : config.GetString(path, "");
        TimeSpan? value;
        try
        {
            value = overridden
                ? Akka.Configuration.ConfigurationFactory.ParseString($"value = \"{text}\"").GetTimeSpan("value", null, allowInfinite: false)
                : config.GetTimeSpan(path, null, allowInfinite: false);
        }
        catch (Exception e) when (e is FormatException or Akka.Configuration.ConfigurationException or ArgumentException or OverflowException)
        {
            value = null;
        }
        if (value is not { } duration || duration <= TimeSpan.Zero)
            throw new Sweep.Protocol.InvalidInputException($"{source}: '{text}' is not a positive duration (e.g. 30s, 500ms, 2m)");
        return (duration, source);
    }
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
            // A write the driver is still retrying (busy database) must not be failed by Akka's circuit breaker first.
            .AddHocon(BreakerTimeouts(JournalTimings.Current.BusyRetry + TimeSpan.FromSeconds(10)), HoconAddMode.Prepend)
            .WithSqlPersistence(journal.ConnectionString, journal.ProviderName)
            .AddHocon(journal.IsPostgres ? "" : SqliteReadsTakeNoLock, HoconAddMode.Prepend)
            .WithCustomSerializer("sweep", SweepSerializer.SerializableTypes, system => new SweepSerializer(system));

    /// <summary>
    /// Microsoft.Data.Sqlite begins a read-committed or serializable transaction as BEGIN IMMEDIATE,
    /// which takes the write lock: every replay and query would then wait on (and block) the writer,
    /// and `sweep status` fail while another process holds the file. Read-uncommitted begins a
    /// deferred transaction, which in write-ahead-log mode reads a consistent snapshot without a lock
    /// (read_uncommitted itself only matters for SQLite's shared cache, which is not used).
    /// </summary>
    private const string SqliteReadsTakeNoLock = """
        akka.persistence.journal.sql.read-isolation-level = read-uncommitted
        akka.persistence.snapshot-store.sql.read-isolation-level = read-uncommitted
        akka.persistence.query.journal.sql.read-isolation-level = read-uncommitted
        """;

    private static string BreakerTimeouts(TimeSpan callTimeout)
    {
        var seconds = (int)Math.Ceiling(callTimeout.TotalSeconds);
        return $"akka.persistence.journal.sql.circuit-breaker.call-timeout = {seconds}s\nakka.persistence.snapshot-store.sql.circuit-breaker.call-timeout = {seconds}s";
    }
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
        if (!journal.IsPostgres) Directory.CreateDirectory(journal.DataDirectory);
        await EnsureReachableAsync(journal);
        // Logs and checkpoints live in the data directory with either journal; made once the journal is there.
        Directory.CreateDirectory(journal.DataDirectory);
        var logging = SweepLogging.Configure(journal, logName, SweepAkkaConfiguration.AkkaConfig);
        if (!journal.IsPostgres) UseWriteAheadLog(journal);
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        // The journal's settings as a service, so whatever reads it can name it in a failure (SweepJournal).
        builder.Services.AddSingleton(journal);
        builder.Services.AddAkka(ClusterOptions.SystemName, akka =>
        {
            akka.WithSweepJournal(journal);
            akka.AddHocon(logging, HoconAddMode.Prepend);
            cluster?.Configure(akka);
        });
        var host = builder.Build();
        await host.StartAsync();
        var started = new SweepSystem(host);
        if (cluster?.Join is { } join && !await JoinedWithinAsync(started.System, ClusterTimings.Current.JoinTimeout))
        {
            // Nothing of the journal was touched yet (its plugin starts lazily); the node ends without having been a member.
            await started.DisposeAsync();
            var seconds = ClusterTimings.Current.JoinTimeout.TotalSeconds.ToString("0.###", global::System.Globalization.CultureInfo.InvariantCulture);
            throw new SetupFaultException($"--join {join}: no cluster node answered within {seconds} s; check the address and that the first node is running");
        }
        return started;
    }

    /// <summary>
    /// Whether a node of the cluster let this one in (it is a member, Joining or Up) within
    /// <paramref name="timeout"/>; Akka itself would keep trying to join the seed node for ever.
    /// </summary>
    private static async Task<bool> JoinedWithinAsync(ActorSystem system, TimeSpan timeout)
    {
        var joined = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watch = system.ActorOf(Props.Create(() => new JoinWatch(joined)), "join-watch");
        var ended = await Task.WhenAny(joined.Task, Task.Delay(timeout));
        system.Stop(watch);
        return ended == joined.Task;
    }

    /// <summary>Completes its task when this node appears among the cluster's members.</summary>
    private sealed class JoinWatch : ReceiveActor
    {
        public JoinWatch(TaskCompletionSource joined)
        {
            var self = Akka.Cluster.Cluster.Get(Context.System).SelfUniqueAddress;
            Receive<Akka.Cluster.ClusterEvent.IMemberEvent>(e =>
            {
                if (e.Member.UniqueAddress.Equals(self)) joined.TrySetResult();
            });
        }

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(Akka.Cluster.ClusterEvent.IMemberEvent));

        protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
    }

    /// <summary>
    /// Opens the journal's database once before Akka does: a server that cannot be reached, or a
    /// file that cannot be opened, is one line naming the journal and what to do
    /// (<see cref="JournalUnavailableException"/>, exit code 1), not Akka's stack traces.
    /// </summary>
    private static async Task EnsureReachableAsync(JournalSettings journal)
    {
        try
        {
            await using var connection = journal.CreateConnection();
            await connection.OpenAsync();
        }
        catch (Exception e) when (e is global::System.Data.Common.DbException or IOException or UnauthorizedAccessException or TimeoutException)
        {
            var fault = JournalFaults.Describe(e);
            throw new JournalUnavailableException($"journal {journal.Description}: {fault.Cause}; nothing was changed, {fault.Advice} and try again");
        }
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
        try
        {
            await Serilog.Log.CloseAndFlushAsync();
        }
        catch (IOException)
        {
            // The log file's disk is full (often the very fault the sweep stopped for): the journal, not the log, holds the record.
        }
    }
}
