using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using LinqToDB;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Sweep.Protocol.Serialization;

namespace Sweep.Orchestrator.Hosting;

/// <summary>Where a sweep's journal and checkpoints live: a data directory with an embedded SQLite journal.</summary>
public sealed record JournalSettings(string DataDirectory)
{
    public static string DefaultDataDirectory => Path.Combine(Environment.CurrentDirectory, "sweep-data");

    public string JournalFile => Path.Combine(DataDirectory, "journal.db");

    public string CheckpointDirectory => Path.Combine(DataDirectory, "checkpoints");

    public string ConnectionString => $"Data Source={JournalFile};Pooling=True";

    public bool Exists => File.Exists(JournalFile);
}

/// <summary>
/// A running actor system configured for sweeps: hocon/akka.conf, Akka.Persistence.Sql on the
/// journal, and the sweep serializer for every event, snapshot and message.
/// </summary>
public static class SweepAkkaConfiguration
{
    private static string AkkaConfigFile => Path.Combine(AppContext.BaseDirectory, "hocon", "akka.conf");

    /// <summary>hocon/akka.conf, the SQL journal and snapshot store on <paramref name="journal"/>, and the sweep serializer.</summary>
    public static AkkaConfigurationBuilder WithSweepJournal(this AkkaConfigurationBuilder akka, JournalSettings journal) =>
        akka.AddHocon(Akka.Configuration.ConfigurationFactory.ParseString(File.ReadAllText(AkkaConfigFile)), HoconAddMode.Prepend)
            .WithSqlPersistence(journal.ConnectionString, ProviderName.SQLiteMS)
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

    public static async Task<SweepSystem> StartAsync(JournalSettings journal, Action<AkkaConfigurationBuilder>? configure = null)
    {
        Directory.CreateDirectory(journal.DataDirectory);
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddAkka("sweep", akka =>
        {
            akka.WithSweepJournal(journal);
            configure?.Invoke(akka);
        });
        var host = builder.Build();
        await host.StartAsync();
        return new SweepSystem(host);
    }

    public async ValueTask DisposeAsync()
    {
        await host.StopAsync();
        host.Dispose();
    }
}
