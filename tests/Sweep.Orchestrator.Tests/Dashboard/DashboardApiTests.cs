using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Sweep.Orchestrator.Journal;

namespace Sweep.Orchestrator.Tests.Dashboard;

/// <summary>`sweep dashboard`'s JSON API and page, on a test server over a real SQLite journal written by `sweep run`.</summary>
[Collection(ProcessCollection.Name)]
public sealed class DashboardApiTests(DashboardFixture fixture) : IClassFixture<DashboardFixture>
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(1);
    private HttpClient Client => fixture.Client;

    [Fact]
    public async Task The_list_has_the_sweep_with_its_counts()
    {
        var list = JsonDocument.Parse(await Client.GetStringAsync("/api/sweeps")).RootElement;
        var sweep = Assert.Single(list.EnumerateArray());
        Assert.Equal(DashboardFixture.SweepId, sweep.GetProperty("sweepId").GetString());
        Assert.Equal("dash", sweep.GetProperty("name").GetString());
        Assert.Equal("Completed", sweep.GetProperty("state").GetString());
        Assert.Equal(4, sweep.GetProperty("trials").GetInt32());
        Assert.Equal(4, sweep.GetProperty("finished").GetInt32());
    }

    [Fact]
    public async Task A_sweep_is_the_same_json_as_status_json()
    {
        using var response = await Client.GetAsync($"/api/sweeps/{DashboardFixture.SweepId}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var served = JsonNode.Parse(await response.Content.ReadAsStringAsync());
        var (exit, stdout, stderr) = SweepProcess.Run("status", DashboardFixture.SweepId, "--data-dir", fixture.DataDir, "--json");
        Assert.True(exit == 0, stdout + stderr);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(stdout), served), $"served:\n{served}\nstatus --json:\n{stdout}");
        Assert.Equal(4, served!["trials"]!.AsArray().Count);
        var slots = served["slots"]!.AsArray();
        Assert.Equal(2, slots.Count);
        Assert.All(slots, slot => Assert.True(slot!["healthy"]!.GetValue<bool>()));
        Assert.Null(served["interruptReason"]);
    }

    [Theory]
    [InlineData("/api/sweeps/nope")]
    [InlineData("/api/sweeps/nope/events")]
    [InlineData("/api/sweeps/nope/logs")]
    [InlineData("/api/sweeps/nope/report")]
    [InlineData("/api/sweeps/..%2F..%2Fetc")]
    [InlineData("/api/nothing-here")]
    public async Task Unknown_things_are_a_404_with_a_small_json_error(string path)
    {
        using var response = await Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(JsonDocument.Parse(body).RootElement.TryGetProperty("error", out _), body);
        Assert.DoesNotContain("Exception", body);
        Assert.True(body.Length < 200, body);
    }

    [Fact]
    public async Task Events_stream_replays_the_history_as_server_sent_events_and_ends_after_the_sweep_completed()
    {
        using var cancel = new CancellationTokenSource(Long);
        var events = await ReadEventsAsync("/api/sweeps/" + DashboardFixture.SweepId + "/events", null, cancel.Token);
        Assert.Equal("sweep-started", events[0].Type);
        Assert.Equal("end", events[^1].Type);
        Assert.Equal("sweep-completed", events[^2].Type);
        var progress = events.Where(e => e.Type == "trial-progress").ToList();
        Assert.Equal(4, progress.Select(p => JsonDocument.Parse(p.Data).RootElement.GetProperty("trialId").GetString()).Distinct().Count());
        Assert.True(progress.Count >= 4 * 5, $"{progress.Count} progress events");
        var first = JsonDocument.Parse(progress[0].Data).RootElement;
        Assert.False(string.IsNullOrEmpty(first.GetProperty("trialId").GetString()));
        Assert.InRange(first.GetProperty("metrics").GetProperty("testAccuracy").GetDouble(), 0, 1);
        Assert.Equal(4, events.Count(e => e.Type == "trial-completed"));

        // The numbers let a reconnecting EventSource continue where it was.
        var persisted = await PersistedCount();
        Assert.Equal(persisted, events.Count(e => e.Id is not null));
        var rest = await ReadEventsAsync("/api/sweeps/" + DashboardFixture.SweepId + "/events", persisted - 3, cancel.Token);
        Assert.Equal([(persisted - 2).ToString(), (persisted - 1).ToString(), persisted.ToString(), null], rest.Select(e => e.Id));
    }

    [Fact]
    public async Task Logs_gives_one_trials_lines()
    {
        var status = JsonDocument.Parse(await Client.GetStringAsync($"/api/sweeps/{DashboardFixture.SweepId}")).RootElement;
        var trial = status.GetProperty("trials")[0].GetProperty("name").GetString()!;
        var lines = JsonDocument.Parse(await Client.GetStringAsync($"/api/sweeps/{DashboardFixture.SweepId}/logs?trial={Uri.EscapeDataString(trial)}")).RootElement;
        Assert.NotEmpty(lines.EnumerateArray());
        Assert.All(lines.EnumerateArray(), l => Assert.Equal(trial, l.GetProperty("trial").GetString()));
        Assert.Contains(lines.EnumerateArray(), l => l.GetProperty("message").GetString()!.Contains("completed"));
        var all = JsonDocument.Parse(await Client.GetStringAsync($"/api/sweeps/{DashboardFixture.SweepId}/logs")).RootElement;
        Assert.True(all.GetArrayLength() > lines.GetArrayLength());
        var none = JsonDocument.Parse(await Client.GetStringAsync($"/api/sweeps/{DashboardFixture.SweepId}/logs?trial=no-such-trial")).RootElement;
        Assert.Equal(0, none.GetArrayLength());
    }

    [Fact]
    public async Task The_report_folder_is_served_and_nothing_outside_it()
    {
        var files = JsonDocument.Parse(await Client.GetStringAsync($"/api/sweeps/{DashboardFixture.SweepId}/report")).RootElement
            .GetProperty("files").EnumerateArray().Select(f => f.GetString()!).ToList();
        Assert.Contains("report.md", files);
        var png = Assert.IsType<string>(files.FirstOrDefault(f => f.EndsWith(".png")));

        using (var report = await Client.GetAsync($"/api/sweeps/{DashboardFixture.SweepId}/report/report.md"))
        {
            Assert.Equal(HttpStatusCode.OK, report.StatusCode);
            Assert.Equal("text/plain", report.Content.Headers.ContentType?.MediaType);
            Assert.Contains(DashboardFixture.SweepId, await report.Content.ReadAsStringAsync());
        }
        using (var figure = await Client.GetAsync($"/api/sweeps/{DashboardFixture.SweepId}/report/{png}"))
        {
            Assert.Equal(HttpStatusCode.OK, figure.StatusCode);
            Assert.Equal("image/png", figure.Content.Headers.ContentType?.MediaType);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], (await figure.Content.ReadAsByteArrayAsync())[..4]);
        }

        File.WriteAllText(Path.Combine(fixture.DataDir, DashboardFixture.SweepId, "secret.md"), "not in the report folder");
        foreach (var path in new[]
        {
            "report/..%2Fsecret.md", "report/%2E%2E%2Fsecret.md", "report/..%5Csecret.md", "report/...", "report/.report.md",
            "report/%2E%2E%2F%2E%2E%2Fjournal.db", "report/..%2F..%2Fjournal.db", "report/nope.png",
        })
        {
            using var response = await Client.GetAsync($"/api/sweeps/{DashboardFixture.SweepId}/{path}");
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{path}: {response.StatusCode}");
            Assert.DoesNotContain("not in the report folder", await response.Content.ReadAsStringAsync());
        }
        using var raw = await Client.GetAsync($"/api/sweeps/{DashboardFixture.SweepId}/report/../secret.md");
        Assert.DoesNotContain("not in the report folder", await raw.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_page_and_its_scripts_are_served_with_a_policy_that_forbids_inline_scripts()
    {
        using var page = await Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self'", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        var html = await page.Content.ReadAsStringAsync();
        Assert.DoesNotMatch(new Regex("<script(?![^>]*\\bsrc=)", RegexOptions.IgnoreCase), html);
        Assert.DoesNotMatch(new Regex("\\son[a-z]+=", RegexOptions.IgnoreCase), html);
        foreach (var asset in new[] { "/app.js", "/style.css", "/vendor/chart.js/chart.umd.min.js" })
        {
            using var response = await Client.GetAsync(asset);
            Assert.True(response.StatusCode == HttpStatusCode.OK, asset);
        }
        var script = await Client.GetStringAsync("/app.js");
        Assert.DoesNotContain("innerHTML", script.Replace("never through innerHTML", ""));
    }

    [Fact]
    public async Task The_dashboard_writes_nothing_to_the_journal()
    {
        var before = fixture.RowCounts();
        var eventsBefore = await PersistedCount();
        using var cancel = new CancellationTokenSource(Long);
        await Client.GetStringAsync("/api/sweeps");
        await Client.GetStringAsync($"/api/sweeps/{DashboardFixture.SweepId}");
        (await Client.GetAsync("/api/sweeps/nope")).Dispose();
        await ReadEventsAsync($"/api/sweeps/{DashboardFixture.SweepId}/events", null, cancel.Token);
        await Client.GetStringAsync($"/api/sweeps/{DashboardFixture.SweepId}/logs");
        await Client.GetStringAsync($"/api/sweeps/{DashboardFixture.SweepId}/report");

        Assert.Equal(before, fixture.RowCounts());
        Assert.Equal(eventsBefore, await PersistedCount());
    }

    private async Task<long> PersistedCount()
    {
        return (await SweepJournal.EventsAsync(fixture.Journal, DashboardFixture.SweepId)).Count;
    }

    internal sealed record ServerSentEvent(string? Id, string Type, string Data);

    /// <summary>Reads a server-sent event stream to its end (the server ends it after SweepCompleted).</summary>
    private async Task<List<ServerSentEvent>> ReadEventsAsync(string path, long? lastEventId, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is { } last) request.Headers.Add("Last-Event-ID", last.ToString());
        using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel));
        return await ParseEventsAsync(reader, _ => false, cancel);
    }

    /// <summary>Parses events until the stream ends or <paramref name="stop"/> says so.</summary>
    internal static async Task<List<ServerSentEvent>> ParseEventsAsync(StreamReader reader, Func<ServerSentEvent, bool> stop, CancellationToken cancel)
    {
        var events = new List<ServerSentEvent>();
        string? id = null, type = null, data = null;
        while (await reader.ReadLineAsync(cancel) is { } line)
        {
            if (line.Length == 0)
            {
                if (data is not null)
                {
                    var e = new ServerSentEvent(id, type ?? "message", data);
                    events.Add(e);
                    if (stop(e)) break;
                }
                id = type = data = null;
            }
            else if (line.StartsWith("id: ")) id = line[4..];
            else if (line.StartsWith("event: ")) type = line[7..];
            else if (line.StartsWith("data: ")) data = line[6..];
        }
        return events;
    }
}
