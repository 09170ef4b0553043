using System.Diagnostics;
using Npgsql;

namespace Sweep.Orchestrator.Tests.Cluster;

/// <summary>
/// A real PostgreSQL server for the tests: a private cluster in a temporary folder, on a free
/// loopback port, started from the installed server binaries (scripts/test.sh installs Debian's
/// postgresql when they are missing) and stopped afterwards. Each test asks for a database of its own.
/// SWEEP_TEST_POSTGRES (a connection string to a server that lets its user create databases) replaces it.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private readonly string? folder;
    private readonly string? bin;
    private readonly string adminConnection;
    private int databases;
    private readonly int port;

    public PostgresServer()
    {
        if (Environment.GetEnvironmentVariable("SWEEP_TEST_POSTGRES") is { Length: > 0 } given)
        {
            adminConnection = given;
            return;
        }
        bin = FindServerBinaries()
              ?? throw new InvalidOperationException("PostgreSQL server binaries not found (initdb, pg_ctl): run 'bash scripts/test.sh', which installs Debian's postgresql, or set SWEEP_TEST_POSTGRES");
        folder = Directory.CreateTempSubdirectory("sweep-postgres-").FullName;
        int port = FreePort.Next();
        bool root = Environment.UserName == "root";
        if (root) Run("chown", "-R", "postgres:postgres", folder);
        RunServerTool(root, "initdb", "-D", Path.Combine(folder, "data"), "-U", "sweep", "--auth=trust", "-E", "UTF8", "--no-sync");
        this.port = port;
        Start();
        adminConnection = $"Host=127.0.0.1;Port={port};Username=sweep;Database=postgres;Pooling=false";
    }

    /// <summary>Starts the server (again, after <see cref="Stop"/>), on the same port and data.</summary>
    public void Start() =>
        RunServerTool(Environment.UserName == "root", "pg_ctl", "-D", Path.Combine(folder!, "data"), "-l", Path.Combine(folder!, "server.log"), "-w", "-t", "60",
            "-o", $"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start");

    /// <summary>Stops the server the way an operator's restart would (fast shutdown: connections are closed).</summary>
    public void Stop() => RunServerTool(Environment.UserName == "root", "pg_ctl", "-D", Path.Combine(folder!, "data"), "-m", "fast", "-w", "stop");

    /// <summary>A fresh, empty database; its connection string.</summary>
    public string CreateDatabase()
    {
        var name = $"sweep_test_{Environment.ProcessId}_{Interlocked.Increment(ref databases)}";
        using (var connection = new NpgsqlConnection(adminConnection))
        {
            connection.Open();
            using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name}; ", connection);
            command.ExecuteNonQuery();
            command.CommandText = $"CREATE DATABASE {name}";
            command.ExecuteNonQuery();
        }
        return new NpgsqlConnectionStringBuilder(adminConnection) { Database = name, Pooling = true }.ConnectionString;
    }

    public void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        if (folder is null) return;
        try
        {
            RunServerTool(Environment.UserName == "root", "pg_ctl", "-D", Path.Combine(folder, "data"), "-m", "immediate", "-w", "stop");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string? FindServerBinaries()
    {
        if (!Directory.Exists("/usr/lib/postgresql")) return null;
        return Directory.GetDirectories("/usr/lib/postgresql")
            .Select(version => Path.Combine(version, "bin"))
            .Where(dir => File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl")))
            .OrderByDescending(dir => dir, StringComparer.Ordinal)
            .FirstOrDefault();
    }

    /// <summary>The server refuses to run as root: as root, its tools run as the postgres user.</summary>
    private void RunServerTool(bool root, string tool, params string[] args)
    {
        var path = Path.Combine(bin!, tool);
        if (root) Run("runuser", ["-u", "postgres", "--", path, .. args]);
        else Run(path, args);
    }

    private static void Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2))) process.Kill(true);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {output.Result} {error.Result}");
    }

}
