using System.Text.Json;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Tests;

/// <summary>
/// Early stopping through the real `sweep run` and `sweep resume` (synthetic trials, real SQLite
/// journal): every stop in the journal is checked against ASHA recomputed here, independently, from
/// the journal's own test points in their order.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class EarlyStoppingEndToEndTests : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(4);
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-stopping-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string DataDir => Path.Combine(temp, "data");

    private string WriteSpec(double iterationMs)
    {
        var path = Path.Combine(temp, "asha.conf");
        File.WriteAllText(path, $$"""
            sweep {
              name = asha
              model = synthetic
              max-iter = 900
              test-interval = 100
              synthetic { iteration-ms = {{iterationMs}} }
              grid { batch-size = [16, 32, 64, 128], base-lr = [0.001, 0.005, 0.01, 0.02] }
              early-stopping { policy = asha, grace-period = 100, reduction-factor = 3 }
            }
            """);
        return path;
    }

    private async Task<IReadOnlyList<ISweepEvent>> Events(string sweepId) => await SweepJournal.EventsAsync(new JournalSettings(DataDir), sweepId);

    /// <summary>
    /// ASHA over the journal's test points in journal order, written out plainly: at the rungs 100
    /// and 300 (100 × 3^k below 900), a trial's first point at or past a rung joins the rung's list,
    /// and it stops when its value is below the list's 2/3 quantile (linear interpolation). The
    /// stops it finds, as (trial, iteration, value, cut-off).
    /// </summary>
    private static List<(string Trial, int Iteration, double Value, double Cutoff)> AshaByHand(IReadOnlyList<ISweepEvent> events)
    {
        int[] rungs = [100, 300];
        var lists = rungs.ToDictionary(r => r, _ => new List<(string Trial, double Value)>());
        var stopped = new HashSet<string>();
        var stops = new List<(string, int, double, double)>();
        foreach (var p in events.OfType<TrialProgress>())
        {
            int i = p.Metrics.Iteration;
            if (stopped.Contains(p.TrialId) || i < 100 || i >= 900) continue;
            int rung = rungs.Last(r => r <= i);
            if (lists[rung].Any(e => e.Trial == p.TrialId)) continue;
            lists[rung].Add((p.TrialId, p.Metrics.TestAccuracy));
            var sorted = lists[rung].Select(e => e.Value).OrderBy(v => v).ToList();
            double position = (2.0 / 3) * (sorted.Count - 1);
            int low = (int)position;
            double cutoff = low + 1 < sorted.Count ? sorted[low] + (position - low) * (sorted[low + 1] - sorted[low]) : sorted[low];
            if (p.Metrics.TestAccuracy < cutoff)
            {
                stopped.Add(p.TrialId);
                stops.Add((p.TrialId, i, p.Metrics.TestAccuracy, cutoff));
            }
        }
        return stops;
    }

    private static void AssertStopsAreAshas(IReadOnlyList<ISweepEvent> events)
    {
        var journaled = events.OfType<TrialStoppedEarly>().ToList();
        var expected = AshaByHand(events);
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Select(s => (s.Trial, s.Iteration, s.Value)), journaled.Select(s => (s.TrialId, s.Iteration, s.Value)));
        Assert.Equal(expected.Select(s => s.Cutoff), journaled.Select(s => s.Threshold), new ToleranceComparer(1e-12));
        Assert.All(journaled, s => Assert.Equal(EarlyStoppingPolicy.Asha, s.Policy));
        foreach (var stop in journaled)
        {
            // Every trial ends once: a stopped trial never completes, and nothing of it is recorded after its stop.
            int at = events.ToList().IndexOf(stop);
            Assert.DoesNotContain(events.Skip(at + 1), e => e is ITrialEvent t && t.TrialId == stop.TrialId);
            Assert.DoesNotContain(events, e => e is TrialCompleted c && c.TrialId == stop.TrialId);
        }
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;
    }

    [Fact]
    public async Task Asha_stops_the_trials_it_should_and_they_are_a_state_of_their_own_in_status_and_exit_code_0()
    {
        var (exit, stdout, stderr) = SweepProcess.Run("run", WriteSpec(2), "--sweep-id", "asha", "--data-dir", DataDir, "--workers", "2");

        Assert.True(exit == 0, $"{exit}\n{stdout}\n{stderr}");
        var events = await Events("asha");
        AssertStopsAreAshas(events);
        var stopped = events.OfType<TrialStoppedEarly>().ToList();
        Assert.Equal(16 - stopped.Count, events.OfType<TrialCompleted>().Count());
        Assert.Contains(events, e => e is SweepCompleted);
        // Compute spent: the stopped trials' iterations are saved.
        int trained = events.OfType<TrialProgress>().GroupBy(p => p.TrialId).Sum(g => g.Max(p => p.Metrics.Iteration));
        Assert.True(trained < 16 * 900, $"{trained} iterations");

        using var status = JsonDocument.Parse(SweepProcess.Run("status", "asha", "--data-dir", DataDir, "--json").Stdout);
        var rows = status.RootElement.GetProperty("trials").EnumerateArray().ToList();
        foreach (var stop in stopped)
        {
            var row = rows.Single(r => r.GetProperty("id").GetString() == stop.TrialId);
            Assert.Equal("Stopped", row.GetProperty("state").GetString());
            Assert.Equal(stop.Iteration, row.GetProperty("stoppedAtIteration").GetInt32());
            Assert.Equal(stop.Reason, row.GetProperty("stopReason").GetString());
        }
        // A stopped trial keeps its last recorded checkpoint.
        foreach (var stop in stopped)
        {
            var checkpoint = events.OfType<TrialCheckpointed>().LastOrDefault(c => c.TrialId == stop.TrialId);
            if (checkpoint is not null) Assert.True(File.Exists(checkpoint.Path), $"{checkpoint.Path} of the stopped trial {stop.TrialId}");
        }
        Assert.Contains(stopped, s => events.OfType<TrialCheckpointed>().Any(c => c.TrialId == s.TrialId));
        var table = SweepProcess.Run("status", "asha", "--data-dir", DataDir).Stdout;
        Assert.EndsWith($"completed; {16 - stopped.Count} completed, {stopped.Count} stopped", table.TrimEnd());
        Assert.Contains($"stopped early at {stopped[0].Iteration}: {stopped[0].Reason}", table);
    }

    /// <summary>
    /// The median and plateau rules, and ASHA with rungs in images, through the real `sweep run`: the
    /// journal's stops are exactly the decisions of the policy's fold (unit-tested against hand
    /// computations in EarlyStoppingTests) replayed over the journal's test points in their order,
    /// and each stopped trial ends there.
    /// </summary>
    [Theory]
    [InlineData("median", "early-stopping { policy = median, grace-period = 200, min-trials = 3 }")]
    [InlineData("plateau", "early-stopping { policy = plateau, grace-period = 200, patience = 2, min-delta = 0.01 }")]
    [InlineData("asha", "early-stopping { policy = asha, resource = images }")]
    public async Task Median_plateau_and_asha_in_images_stop_as_their_fold_over_the_journal_decides(string policy, string block)
    {
        var spec = Path.Combine(temp, $"{policy}.conf");
        File.WriteAllText(spec, $$"""
            sweep {
              name = {{policy}}
              model = synthetic
              max-iter = 900
              test-interval = 100
              synthetic { iteration-ms = 2 }
              grid { batch-size = [16, 32, 64, 128], base-lr = [0.001, 0.005, 0.01, 0.02] }
              {{block}}
            }
            """);
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", policy, "--data-dir", DataDir, "--workers", "2");

        Assert.True(exit == 0, $"{exit}\n{stdout}\n{stderr}");
        var events = await Events(policy);
        var definition = ((SweepStarted)events[0]).Definition;
        var fold = Sweep.Orchestrator.Coordination.EarlyStopping.Start(definition.EarlyStopping!);
        var decided = new List<TrialStoppedEarly>();
        foreach (var p in events.OfType<TrialProgress>())
        {
            (fold, var stop) = fold.Decide(p, definition.Trials.Single(t => t.Id == p.TrialId).Spec);
            if (stop is not null) decided.Add(stop);
        }
        var journaled = events.OfType<TrialStoppedEarly>().ToList();
        Assert.NotEmpty(journaled);
        Assert.Equal(decided.Select(s => (s.TrialId, s.Iteration, s.Policy, s.Value, s.Threshold, s.Reason)), journaled.Select(s => (s.TrialId, s.Iteration, s.Policy, s.Value, s.Threshold, s.Reason)));
        Assert.All(journaled, s => Assert.Equal(policy, s.Policy.ToString().ToLowerInvariant()));
        Assert.Equal(16, events.Count(e => e is TrialCompleted or TrialStoppedEarly));
        Assert.EndsWith($"{16 - journaled.Count} completed, {journaled.Count} stopped", SweepProcess.Run("status", policy, "--data-dir", DataDir).Stdout.TrimEnd());
    }

    [Fact]
    public async Task A_sweep_killed_with_sigkill_and_resumed_decides_as_the_fold_of_its_journal_says()
    {
        var spec = WriteSpec(6);
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", "killed", "--data-dir", DataDir, "--workers", "2"))
        {
            run.WaitForLines(lines => lines.Count(l => l.Contains(": stopped early at ", StringComparison.Ordinal)) >= 2, Long);
            run.Signal(SweepProcess.SIGKILL);
            run.WaitForExit(TimeSpan.FromSeconds(30));
        }
        var before = await Events("killed");
        Assert.DoesNotContain(before, e => e is SweepCompleted);
        Assert.True(before.OfType<TrialStoppedEarly>().Count() >= 2);

        var (exit, stdout, stderr) = SweepProcess.Run("resume", "killed", "--data-dir", DataDir, "--workers", "2");

        Assert.True(exit == 0, $"{exit}\n{stdout}\n{stderr}");
        var events = await Events("killed");
        // The decisions before the kill stand, and every decision of the whole journal is ASHA's over its points in order.
        Assert.Equal(before.OfType<TrialStoppedEarly>(), events.OfType<TrialStoppedEarly>().Take(before.OfType<TrialStoppedEarly>().Count()));
        AssertStopsAreAshas(events);
        var trials = ((SweepStarted)events[0]).Definition.Trials.Select(t => t.Id).ToHashSet();
        var ended = events.Where(e => e is TrialCompleted or TrialStoppedEarly).Select(e => ((ITrialEvent)e).TrialId).ToList();
        Assert.Equal(trials.Order(), ended.Order());
    }
}
