using System.Net;
using System.Net.Sockets;
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
        // A bad SWEEP_JOIN_TIMEOUT is bad input now, before anything is persisted.
        if (Join is not null) _ = ClusterTimings.Current.JoinTimeout;
    }

    /// <summary>
    /// Refuses a fixed --port that another program listens on (another `sweep` node, any server) before
    /// this node persists or joins anything: <see cref="InvalidInputException"/>, "--port P: in use by
    /// another program …". Akka's transport would otherwise share the port with another sweep node (on
    /// Linux it binds with SO_REUSEPORT, as .NET's ReuseAddress does there: the live node then took this
    /// one for a new incarnation of itself), or fail deep in its start-up with an AggregateException.
    /// </summary>
    /// <remarks>
    /// A bind check, released before Akka binds: a program that takes the port in between is not caught
    /// here (Akka then fails to bind, or shares the port as above). That race is accepted: it needs two
    /// programs started on the same port within milliseconds of each other, and the check catches the
    /// common case, a port a live node or server holds.
    /// </remarks>
    public void RequirePortFree()
    {
        if (Port == 0) return;
        IPAddress? address;
        try
        {
            address = IPAddress.TryParse(Hostname, out var parsed) ? parsed : Dns.GetHostAddresses(Hostname).FirstOrDefault();
        }
        catch (SocketException)
        {
            return; // a name that does not resolve is Akka's to report
        }
        if (address is null) return;
        using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        // SO_REUSEADDR alone (not .NET's ReuseAddress, which adds SO_REUSEPORT on Linux): a port left in
        // TIME_WAIT by a node that just stopped is free, as it is to Akka; a listening socket is not,
        // whether its owner set SO_REUSEPORT or not.
        const int SolSocket = 1, SoReuseAddr = 2;
        if (OperatingSystem.IsLinux()) probe.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
        try
        {
            probe.Bind(new IPEndPoint(address, Port));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new InvalidInputException($"--port {Port}: in use by another program (another sweep node, or any server listening on {Hostname}:{Port}); choose another port, or stop that program");
        }
        catch (SocketException)
        {
            // An address this machine does not have, or not allowed to bind: Akka's to report as it binds.
        }
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
