using System.CommandLine;
using Sweep.Orchestrator.Cli;
using Sweep.Orchestrator.Dashboard;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Tests.Dashboard;

/// <summary>`sweep dashboard`'s command line: what it refuses before serving anything.</summary>
public sealed class DashboardCommandTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-dashboard-cli-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    private static Task<int> Invoke(params string[] args)
    {
        var root = new RootCommand { DashboardCommand.Create(TextWriter.Null) };
        var parsed = root.Parse(args);
        Assert.Empty(parsed.Errors);
        return parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    [Fact]
    public async Task A_missing_journal_is_refused_and_not_created()
    {
        var dataDir = Path.Combine(temp, "data");
        var refused = await Assert.ThrowsAsync<InvalidInputException>(() => Invoke("dashboard", "--data-dir", dataDir, "--port", "0"));
        Assert.Contains("no journal here", refused.Message);
        Assert.False(Directory.Exists(dataDir));
    }

    [Fact]
    public async Task A_bad_port_is_refused()
    {
        var refused = await Assert.ThrowsAsync<InvalidInputException>(() => Invoke("dashboard", "--data-dir", temp, "--port", "70000"));
        Assert.Contains("--port", refused.Message);
    }

    [Fact]
    public void Defaults_are_loopback_and_5080()
    {
        var parsed = new RootCommand { DashboardCommand.Create(TextWriter.Null) }.Parse(["dashboard"]);
        Assert.Empty(parsed.Errors);
        Assert.Equal("127.0.0.1", DashboardServer.DefaultBind);
        Assert.Equal(5080, DashboardServer.DefaultPort);
    }
}
