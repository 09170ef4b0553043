using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sweep.Orchestrator.Tests.Dashboard;

/// <summary>A journal with one tiny synthetic sweep, written by the real `sweep run`.</summary>
public sealed class TinyJournalFixture : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-dashboard-process-").FullName;

    public TinyJournalFixture()
    {
        var spec = Path.Combine(temp, "tiny.conf");
        File.WriteAllText(spec, "sweep { name = tiny, model = synthetic, max-iter = 10, test-interval = 5, grid { batch-size = [16], base-lr = [0.01] } }");
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "tiny", "--data-dir", DataDir, "--workers", "1");
        if (exit != 0) throw new InvalidOperationException($"sweep run exited {exit}\n{stdout}\n{stderr}");
    }

    public string DataDir => Path.Combine(temp, "data");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }
}

/// <summary>`sweep dashboard` as a real process: the addresses its help allows, served and printed.</summary>
[Collection(ProcessCollection.Name)]
public sealed class DashboardProcessTests(TinyJournalFixture journal) : IClassFixture<TinyJournalFixture>
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(2);

    private string DataDir => journal.DataDir;

    [Theory]
    [InlineData("localhost", "0")]
    [InlineData("LOCALHOST", "FREE")]
    [InlineData("127.0.0.1", "0")]
    public async Task The_dashboard_serves_on_the_bind_address_and_prints_its_url(string bind, string port)
    {
        string portArgument = port == "FREE" ? FreePort.Next().ToString() : port;

        using var dashboard = SweepProcess.Start("dashboard", "--data-dir", DataDir, "--bind", bind, "--port", portArgument);
        dashboard.WaitForLine(l => l.StartsWith("dashboard for ", StringComparison.Ordinal), Long);
        var url = Regex.Match(dashboard.Stdout, @" at (?<url>http://\S+?)/ \(Ctrl\+C stops\)").Groups["url"].Value;
        Assert.True(url.Length > 0, dashboard.Stdout);
        var served = new Uri(url);
        Assert.NotEqual(0, served.Port);
        if (port != "0") Assert.Equal(int.Parse(portArgument), served.Port);

        using var http = new HttpClient { BaseAddress = served, Timeout = TimeSpan.FromSeconds(30) };
        using var response = await http.GetAsync("/api/sweeps");
        var sweeps = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        dashboard.Signal(SweepProcess.SIGINT);
        int exit = dashboard.WaitForExit(Long);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("tiny", Assert.Single(sweeps.EnumerateArray()).GetProperty("sweepId").GetString());
        Assert.True(exit == 0, dashboard.Stdout + dashboard.Stderr);
        Assert.DoesNotContain("Exception", dashboard.Stderr);
        Assert.DoesNotContain("sweep:", dashboard.Stderr);
    }

    [Fact]
    public void A_bind_address_that_is_not_an_ip_address_or_localhost_exits_2_with_one_line()
    {

        var (exit, stdout, stderr) = SweepProcess.Run("dashboard", "--data-dir", DataDir, "--bind", "my-host", "--port", "0");

        Assert.Equal(2, exit);
        Assert.Equal("sweep: --bind my-host: not an IP address (or localhost)", stderr.Trim());
        Assert.DoesNotContain("dashboard for", stdout);
    }
}
