using Akka.Hosting;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Hosting;

/// <summary>Where this node listens, whom it joins, and what it may host.</summary>
/// <param name="Hostname">The address other nodes reach this one at (and the one it binds): 127.0.0.1 unless given.</param>
/// <param name="Port">0 picks a free port (fine for workers; the first node needs a known one).</param>
/// <param name="Join">HOST:PORT of a node of the cluster, or null for the first node (it joins itself).</param>
/// <param name="CoordinatorCapable">Whether the singleton coordinator may run here (needs the shared journal).</param>
/// <param name="HostsWorkers">Whether this node offers worker slots.</param>
public sealed record ClusterOptions(string Hostname, int Port, string? Join, bool CoordinatorCapable, bool HostsWorkers)
{
    public const string SystemName = "sweep";
    public const string CoordinatorRole = "coordinator";
    public const string WorkerRole = "worker";
    public const string DefaultHostname = "127.0.0.1";

    private static string ClusterConfigFile => Path.Combine(AppContext.BaseDirectory, "hocon", "cluster.conf");

    /// <summary>Checks the flags together: one line naming what is wrong.</summary>
    public void Validate(JournalSettings journal)
    {
        if (Port is < 0 or > 65535) throw new InvalidInputException($"--port must be 0-65535, got {Port}");
        if (Join is null && Port == 0) throw new InvalidInputException("--port: the first node of a cluster needs a fixed port for the others to --join");
        if (Join is not null && SeedAddress(Join) is null) throw new InvalidInputException($"--join '{Join}': expected HOST:PORT");
        if (CoordinatorCapable && Join is not null && !journal.IsPostgres)
            throw new InvalidInputException($"--journal: a cluster with more than one coordinator-capable node needs a journal every node reaches: give a PostgreSQL connection string (Host=…;Database=…;Username=…), not the SQLite file {journal.JournalFile}");
    }

    public void Configure(AkkaConfigurationBuilder akka)
    {
        var roles = new List<string>();
        if (CoordinatorCapable) roles.Add(CoordinatorRole);
        if (HostsWorkers) roles.Add(WorkerRole);
        var seed = Join is null ? $"akka.tcp://{SystemName}@{Hostname}:{Port}" : SeedAddress(Join)!;
        var node = $$"""
            akka.remote.dot-netty.tcp.hostname = "{{Hostname}}"
            akka.remote.dot-netty.tcp.port = {{Port}}
            akka.cluster.seed-nodes = ["{{seed}}"]
            akka.cluster.roles = [{{string.Join(", ", roles.Select(r => $"\"{r}\""))}}]
            """;
        // Prepended last wins: this node's own settings over hocon/cluster.conf's defaults.
        akka.AddHocon(Akka.Configuration.ConfigurationFactory.ParseString(File.ReadAllText(ClusterConfigFile)), HoconAddMode.Prepend);
        akka.AddHocon(node, HoconAddMode.Prepend);
    }

    private static string? SeedAddress(string join)
    {
        int colon = join.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(join[(colon + 1)..], out int port) || port is <= 0 or > 65535) return null;
        return $"akka.tcp://{SystemName}@{join[..colon]}:{port}";
    }
}
