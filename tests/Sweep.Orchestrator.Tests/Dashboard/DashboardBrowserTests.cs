using PuppeteerSharp;
using Sweep.Orchestrator.Dashboard;
using Sweep.Orchestrator.Hosting;

namespace Sweep.Orchestrator.Tests.Dashboard;

/// <summary>The dashboard page in headless Chromium, over a sweep that `sweep run` is running in another process.</summary>
[Collection(ProcessCollection.Name)]
public sealed class DashboardBrowserTests : IDisposable
{
    private const string Chromium = "/usr/bin/chromium";
    private const string ScriptName = "<script>alert(1)</script>";
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(3);
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-dashboard-browser-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(temp, recursive: true);
        }
        catch (IOException)
        {
            // Chromium may still be letting go of its profile.
        }
    }

    /// <summary>Headless Chromium with a profile in this test's folder.</summary>
    private Task<IBrowser> LaunchAsync(params string[] extraArgs) => Puppeteer.LaunchAsync(new LaunchOptions
    {
        ExecutablePath = Chromium,
        Headless = true,
        UserDataDir = Path.Combine(temp, "chromium-profile"),
        Args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", .. extraArgs],
    });

    /// <summary>The dashboard over a journal on a free loopback port, and a headless Chromium page: disposed page first, the server last.</summary>
    private sealed record OpenDashboard(Microsoft.AspNetCore.Builder.WebApplication App, string Url, IBrowser Browser, IPage Page) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Page.DisposeAsync();
            await Browser.DisposeAsync();
            await App.DisposeAsync();
        }
    }

    /// <summary>Starts the dashboard over <paramref name="journal"/> and opens a page in Chromium (with <paramref name="extraArgs"/>); nothing loaded yet.</summary>
    private async Task<OpenDashboard> OpenDashboardAsync(JournalSettings journal, params string[] extraArgs)
    {
        var app = DashboardServer.Build(journal, DashboardServer.UseKestrel("127.0.0.1", 0));
        await app.StartAsync();
        var browser = await LaunchAsync(extraArgs);
        return new OpenDashboard(app, Assert.Single(DashboardServer.Addresses(app)), browser, await browser.NewPageAsync());
    }

    [Fact]
    public async Task The_page_shows_a_running_sweeps_trials_as_text_and_its_curves_grow_live()
    {
        Assert.True(File.Exists(Chromium),
            $"{Chromium} is missing: the dashboard's browser test needs Debian's chromium package (apt-get install -y chromium; scripts/test.sh installs it when run as root)");
        var dataDir = Path.Combine(temp, "data");
        var spec = Path.Combine(temp, "live.conf");
        File.WriteAllText(spec, $$"""
            sweep {
              name = live
              model = synthetic
              max-iter = 300
              test-interval = 10
              cases = [
                { name = "{{ScriptName}}", batch-size = 32, base-lr = 0.01 }
                { name = "b64 <b>bold</b> & co", batch-size = 64, base-lr = 0.01 }
              ]
              synthetic { iteration-ms = 40 }
            }
            """);
        using var run = SweepProcess.Start("run", spec, "--sweep-id", "live", "--data-dir", dataDir, "--workers", "1");
        run.WaitForLine(l => l.Contains("started attempt"), Long);

        var journal = new JournalSettings(dataDir);
        await using var dashboard = await OpenDashboardAsync(journal, "--disable-quic");
        var (url, page) = (dashboard.Url, dashboard.Page);
        var dialogs = new List<string>();
        var problems = new List<string>();
        page.Dialog += async (_, e) =>
        {
            lock (dialogs) dialogs.Add(e.Dialog.Message);
            await e.Dialog.Dismiss();
        };
        page.PageError += (_, e) => { lock (problems) problems.Add("page error: " + e.Message); };
        page.Console += (_, e) =>
        {
            // A 404 is expected: the page asks for the report until `sweep run` has written it.
            if (e.Message.Type == ConsoleType.Error && !e.Message.Text.Contains("status of 404"))
                lock (problems) problems.Add("console error: " + e.Message.Text);
        };
        await page.SetViewportAsync(new ViewPortOptions { Width = 1400, Height = 1100 });
        await page.GoToAsync(url + "/");

        await page.WaitForSelectorAsync("#sweeps button[data-sweep-id='live']", new WaitForSelectorOptions { Timeout = 30_000 });
        await page.ClickAsync("#sweeps button[data-sweep-id='live']");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#trials tbody tr').length === 2", new WaitForFunctionOptions { Timeout = 30_000 });

        var names = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#trials tbody tr td:first-child')].map(td => td.textContent)");
        Assert.Equal([ScriptName, "b64 <b>bold</b> & co"], names);
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('main script, main b').length"));
        // The worker slot, with its verdict (a synthetic sweep's slot needs no self-test).
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#slots tbody tr').length === 1", new WaitForFunctionOptions { Timeout = 30_000 });
        var slot = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#slots tbody tr td')].map(td => td.textContent)");
        Assert.EndsWith("/cpu-1", slot[0]);
        Assert.Equal(["cpu", Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture), "yes"], slot[1..4]); // --workers 1: every core for its one slot
        Assert.StartsWith("no self-test", slot[4]);

        await page.WaitForFunctionAsync("() => window.sweepDashboard.accuracyPoints() > 0", new WaitForFunctionOptions { Timeout = 60_000 });
        int before = await page.EvaluateExpressionAsync<int>("window.sweepDashboard.accuracyPoints()");
        await Task.Delay(TimeSpan.FromSeconds(4));
        int after = await page.EvaluateExpressionAsync<int>("window.sweepDashboard.accuracyPoints()");
        bool stillRunning = !run.HasExited;
        Directory.CreateDirectory("artifacts");
        await page.ScreenshotAsync(Path.Combine("artifacts", "dashboard-live.png"), new ScreenshotOptions { FullPage = true });
        Assert.True(stillRunning, "the sweep was still running while the curve was read");
        Assert.True(after > before, $"the accuracy curve grew while the sweep ran: {before} then {after} points");

        // The ETA while it runs: every unfinished trial's remaining iterations at its own seconds per
        // iteration (the mean of the timed ones for the others), over the healthy slots; worked out
        // here from the status the page shows.
        await page.WaitForFunctionAsync("() => window.sweepDashboard.etaSeconds() !== null && !document.getElementById('eta').hidden", new WaitForFunctionOptions { Timeout = 30_000 });
        var shown = await page.EvaluateExpressionAsync<string>("JSON.stringify({ status: JSON.parse(window.sweepDashboard.status()), eta: window.sweepDashboard.etaSeconds() })");
        using (var seen = System.Text.Json.JsonDocument.Parse(shown))
        {
            var status = seen.RootElement.GetProperty("status");
            var trials = status.GetProperty("trials").EnumerateArray().ToList();
            var timed = trials.Where(t => t.GetProperty("secondsPer100Iterations").ValueKind == System.Text.Json.JsonValueKind.Number).Select(t => t.GetProperty("secondsPer100Iterations").GetDouble() / 100).ToList();
            double mean = timed.Average();
            double left = trials.Where(t => t.GetProperty("state").GetString() is "Queued" or "Running")
                .Sum(t => Math.Max(0, t.GetProperty("maxIter").GetInt32() - t.GetProperty("iteration").GetInt32())
                          * (t.GetProperty("secondsPer100Iterations").ValueKind == System.Text.Json.JsonValueKind.Number ? t.GetProperty("secondsPer100Iterations").GetDouble() / 100 : mean));
            int healthy = Math.Max(1, status.GetProperty("slots").EnumerateArray().Count(s => s.GetProperty("healthy").GetBoolean()));
            Assert.True(left > 0, "trials were left while the ETA was read");
            Assert.Equal(left / healthy, seen.RootElement.GetProperty("eta").GetDouble(), 9);
        }

        // When the sweep ends: the table says so and the report's figures appear.
        Assert.Equal(0, run.WaitForExit(Long));
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#trials tbody tr td:nth-child(4)')].every(td => td.textContent === 'Completed')", new WaitForFunctionOptions { Timeout = 60_000 });
        await page.WaitForSelectorAsync("#report-figures img", new WaitForSelectorOptions { Timeout = 60_000 });
        await page.ClickAsync("#trials tbody tr");
        await page.WaitForFunctionAsync("() => document.getElementById('log-lines').textContent.includes('completed')", new WaitForFunctionOptions { Timeout = 30_000 });
        Assert.Contains(ScriptName, await page.EvaluateExpressionAsync<string>("document.getElementById('logs-title').textContent"));
        await page.ScreenshotAsync(Path.Combine("artifacts", "dashboard.png"), new ScreenshotOptions { FullPage = true });
        File.Copy(Path.Combine("artifacts", "dashboard.png"), "/tmp/dashboard.png", overwrite: true);
        File.Copy(Path.Combine("artifacts", "dashboard-live.png"), "/tmp/dashboard-live.png", overwrite: true);

        lock (dialogs) Assert.Empty(dialogs);
        lock (problems) Assert.Empty(problems);
    }

    [Fact]
    public async Task A_sweep_whose_process_was_killed_is_shown_as_interrupted_with_no_owner()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing (scripts/test.sh installs it when run as root)");
        var dataDir = Path.Combine(temp, "data");
        var spec = Path.Combine(temp, "killed.conf");
        File.WriteAllText(spec, "sweep { name = killed, model = synthetic, max-iter = 2000, test-interval = 10, synthetic { iteration-ms = 20 }, grid { batch-size = [16, 32], base-lr = [0.01] } }");
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", "killed", "--data-dir", dataDir, "--workers", "2"))
        {
            run.WaitForLine(l => l.Contains("iter 50/2000"), Long);
            run.Signal(SweepProcess.SIGKILL);
            run.WaitForExit(Long);
        }

        var journal = new JournalSettings(dataDir);
        await using var dashboard = await OpenDashboardAsync(journal);
        var (url, page) = (dashboard.Url, dashboard.Page);
        await page.GoToAsync(url + "/");
        await page.WaitForSelectorAsync("#sweeps button[data-sweep-id='killed']", new WaitForSelectorOptions { Timeout = 30_000 });
        Assert.Contains("interrupted (no process owns it)", await page.EvaluateExpressionAsync<string>("document.querySelector(\"#sweeps button[data-sweep-id='killed']\").textContent"));
        await page.ClickAsync("#sweeps button[data-sweep-id='killed']");
        await page.WaitForFunctionAsync("() => !document.getElementById('owner').hidden", new WaitForFunctionOptions { Timeout = 30_000 });
        Assert.Matches(@"^interrupted: no process owns it since .* \(its process .* pid \d+ is gone\); continue with: sweep resume killed --data-dir \S+$", await page.EvaluateExpressionAsync<string>("document.getElementById('owner').textContent"));
        Assert.StartsWith("interrupted (no process owns it); ", await page.EvaluateExpressionAsync<string>("document.getElementById('sweep-summary').textContent"));
    }

    [Fact]
    public async Task A_sweep_of_more_than_a_hundred_trials_shows_the_best_hundred_until_asked_for_all()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing (scripts/test.sh installs it when run as root)");
        var dataDir = Path.Combine(temp, "data");
        var spec = Path.Combine(temp, "many.conf");
        File.WriteAllText(spec, "sweep { name = many, model = synthetic, max-iter = 20, test-interval = 10, synthetic { iteration-ms = 0 }, " +
            "grid { batch-size = [16, 32, 64, 128, 256, 512], base-lr = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.01, 0.011, 0.012, 0.013, 0.014, 0.015, 0.016, 0.017, 0.018, 0.019, 0.02] } }");
        Assert.Equal(0, SweepProcess.Run("run", spec, "--sweep-id", "many", "--data-dir", dataDir, "--workers", "2").ExitCode);
        using var status = System.Text.Json.JsonDocument.Parse(SweepProcess.Run("status", "many", "--data-dir", dataDir, "--json").Stdout);
        var trials = status.RootElement.GetProperty("trials").EnumerateArray().Select((t, i) => (Name: t.GetProperty("name").GetString()!, Best: t.GetProperty("bestTestAccuracy").GetDouble(), Index: i)).ToList();
        Assert.Equal(120, trials.Count);
        var best100 = trials.OrderByDescending(t => t.Best).ThenBy(t => t.Index).Take(100).OrderBy(t => t.Index).Select(t => t.Name).ToList();

        var journal = new JournalSettings(dataDir);
        await using var dashboard = await OpenDashboardAsync(journal);
        var (url, page) = (dashboard.Url, dashboard.Page);
        await page.GoToAsync(url + "/#sweep=many");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#trials tbody tr').length > 0", new WaitForFunctionOptions { Timeout = 30_000 });
        var shown = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#trials tbody tr')].map(tr => tr.dataset.trial)");
        Assert.Equal(best100, shown);
        Assert.StartsWith("Showing 100 of 120 trials", await page.EvaluateExpressionAsync<string>("document.getElementById('rows-note').textContent"));
        await page.EvaluateExpressionAsync("document.getElementById('all-rows').click()");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#trials tbody tr').length === 120", new WaitForFunctionOptions { Timeout = 30_000 });
        Assert.True(await page.EvaluateExpressionAsync<bool>("document.getElementById('rows-note').hidden"));
    }

    [Fact]
    public async Task Trials_stopped_early_show_as_stopped_with_the_reason_the_journal_gives()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing (scripts/test.sh installs it when run as root)");
        var dataDir = Path.Combine(temp, "data");
        var spec = Path.Combine(temp, "asha.conf");
        File.WriteAllText(spec, "sweep { name = asha, model = synthetic, max-iter = 300, test-interval = 50, synthetic { iteration-ms = 1 }, " +
            "grid { batch-size = [16, 32, 64], base-lr = [0.001, 0.002, 0.01, 0.02] }, early-stopping { policy = asha, reduction-factor = 2 } }");
        Assert.Equal(0, SweepProcess.Run("run", spec, "--sweep-id", "asha", "--data-dir", dataDir, "--workers", "2").ExitCode);
        var journal = new JournalSettings(dataDir);
        var stops = (await Sweep.Orchestrator.Journal.SweepJournal.EventsAsync(journal, "asha")).OfType<Sweep.Protocol.Events.TrialStoppedEarly>().ToList();
        Assert.NotEmpty(stops);

        await using var dashboard = await OpenDashboardAsync(journal);
        var (url, browser, page) = (dashboard.Url, dashboard.Browser, dashboard.Page);
        await page.GoToAsync(url + "/");
        await page.WaitForSelectorAsync("#sweeps button[data-sweep-id='asha']", new WaitForSelectorOptions { Timeout = 30_000 });
        await page.ClickAsync("#sweeps button[data-sweep-id='asha']");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#trials tbody tr').length === 12", new WaitForFunctionOptions { Timeout = 30_000 });
        var notes = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#trials tbody tr.Stopped td:last-child')].map(td => td.textContent)");
        Assert.Equal(stops.Select(s => $"stopped early at {s.Iteration}: {s.Reason}").Order(), notes.Order());
        Assert.Contains($"{stops.Count} stopped", await page.EvaluateExpressionAsync<string>("document.getElementById('sweep-summary').textContent"));

        // The link to the sweep is in the address bar, and opening it shows the sweep without a click.
        Assert.Equal("#sweep=asha", await page.EvaluateExpressionAsync<string>("location.hash"));
        await using var bookmarked = await browser.NewPageAsync();
        await bookmarked.GoToAsync(url + "/#sweep=asha");
        await bookmarked.WaitForFunctionAsync("() => document.querySelectorAll('#trials tbody tr').length === 12", new WaitForFunctionOptions { Timeout = 30_000 });

        // The best trial, and how far ahead, as the journal's folded state says.
        using var status = System.Text.Json.JsonDocument.Parse(SweepProcess.Run("status", "asha", "--data-dir", dataDir, "--json").Stdout);
        var completed = status.RootElement.GetProperty("trials").EnumerateArray().Where(t => t.GetProperty("state").GetString() == "Completed")
            .OrderByDescending(t => t.GetProperty("finalTestAccuracy").GetDouble()).ToList();
        var (best, second) = (completed[0], completed[1]);
        double Final(System.Text.Json.JsonElement t) => t.GetProperty("finalTestAccuracy").GetDouble();
        string F(double v, string format) => v.ToString(format, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"Best: {best.GetProperty("name").GetString()}, test accuracy {F(Final(best), "0.0000")} (batch {best.GetProperty("batchSize").GetInt32()}, lr {F(best.GetProperty("baseLr").GetDouble(), "R")}); " +
                     $"{F(100 * (Final(best) - Final(second)), "0.00")} points ahead of {second.GetProperty("name").GetString()}",
            await page.EvaluateExpressionAsync<string>("document.getElementById('best').textContent"));

        // Every finished trial is a line of the parallel coordinates and a point against the chosen parameter;
        // every stopped curve ends with a marker; an unticked trial's curve is left out.
        Assert.Equal(12, await page.EvaluateExpressionAsync<int>("window.sweepDashboard.parallelLines()"));
        Assert.Equal(12, await page.EvaluateExpressionAsync<int>("window.sweepDashboard.scatterPoints()"));
        // A refresh on the same parameter puts the points into the same chart; another parameter makes a new one.
        int charts = await page.EvaluateExpressionAsync<int>("window.sweepDashboard.scatterCharts()");
        await page.EvaluateExpressionAsync("window.sweepDashboard.rerender()");
        Assert.Equal((charts, 12), (await page.EvaluateExpressionAsync<int>("window.sweepDashboard.scatterCharts()"), await page.EvaluateExpressionAsync<int>("window.sweepDashboard.scatterPoints()")));
        await page.EvaluateExpressionAsync("(() => { const s = document.getElementById('scatter-parameter'); s.value = s.options[s.options.length - 1].value; s.dispatchEvent(new Event('change')); })()");
        Assert.Equal((charts + 1, 12), (await page.EvaluateExpressionAsync<int>("window.sweepDashboard.scatterCharts()"), await page.EvaluateExpressionAsync<int>("window.sweepDashboard.scatterPoints()")));
        await page.WaitForFunctionAsync($"() => window.sweepDashboard.endMarkers() === {stops.Count}", new WaitForFunctionOptions { Timeout = 30_000 });
        string first = await page.EvaluateExpressionAsync<string>("document.querySelector('#trials tbody tr').dataset.trial");
        await page.EvaluateExpressionAsync("document.querySelector('#trials tbody tr input').click()");
        var visible = await page.EvaluateExpressionAsync<string[]>("window.sweepDashboard.visibleCurves()");
        Assert.Equal(11, visible.Length);
        Assert.DoesNotContain(first, visible);
        await page.EvaluateExpressionAsync("document.getElementById('show-best').click()");
        var bestFive = completed.Take(5).Select(t => t.GetProperty("name").GetString()!).Order().ToList();
        Assert.Equal(bestFive, (await page.EvaluateExpressionAsync<string[]>("window.sweepDashboard.visibleCurves()")).Order());
        Directory.CreateDirectory("artifacts");
        await page.ScreenshotAsync(Path.Combine("artifacts", "dashboard-stopped.png"), new ScreenshotOptions { FullPage = true });
        File.Copy(Path.Combine("artifacts", "dashboard-stopped.png"), "/tmp/dashboard-stopped.png", overwrite: true);
    }
}
