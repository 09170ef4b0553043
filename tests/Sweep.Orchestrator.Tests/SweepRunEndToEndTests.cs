using System.Text.Json;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Orchestrator.Reporting;
using Sweep.Protocol.Events;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests;

/// <summary>`sweep run`, `resume` and `status` as real OS processes on a real SQLite journal.</summary>
[Collection(ProcessCollection.Name)]
public sealed class SweepRunEndToEndTests : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(4);
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-e2e-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string DataDir => Path.Combine(temp, "data");

    private string WriteSpec(string faults)
    {
        var path = Path.Combine(temp, "synthetic.conf");
        File.WriteAllText(path, $$"""
            sweep {
              name = e2e
              model = synthetic
              max-iter = 200
              test-interval = 50
              grid { batch-size = [16, 32, 64], base-lr = [0.005, 0.01, 0.02] }
              retry { max-attempts = 3, backoff = 0.1 }
              synthetic {
                iteration-ms = 8
                faults = [ {{faults}} ]
              }
            }
            """);
        return path;
    }

    [Fact]
    public async Task A_sweep_killed_with_sigkill_is_finished_by_resume_with_every_trial_ending_exactly_once()
    {
        var spec = WriteSpec("{ trial = b32-lr0.01, at-iteration = 60, kind = exception, attempts = [1] }");
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", "killed", "--data-dir", DataDir, "--workers", "2"))
        {
            run.WaitForLines(lines => lines.Count(l => l.Contains(": completed, test accuracy ")) >= 3, Long);
            run.Signal(SweepProcess.SIGKILL);
            run.WaitForExit(TimeSpan.FromSeconds(30));
        }
        var before = await Events("killed");
        var finishedBeforeKill = before.OfType<TrialCompleted>().Select(e => e.TrialId).ToHashSet();
        Assert.InRange(finishedBeforeKill.Count, 2, 8);
        Assert.DoesNotContain(before, e => e is SweepCompleted);

        var (exit, stdout, stderr) = SweepProcess.Run("resume", "killed", "--data-dir", DataDir, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);

        var events = await Events("killed");
        var completed = events.OfType<TrialCompleted>().GroupBy(e => e.TrialId).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(9, completed.Count);
        Assert.All(completed.Values, count => Assert.Equal(1, count));
        var startedAfterKill = events.Skip(before.Count).OfType<TrialStarted>().Select(e => e.TrialId).ToHashSet();
        Assert.Empty(startedAfterKill.Intersect(finishedBeforeKill));
        Assert.Single(events.OfType<SweepCompleted>());

        var status = JsonDocument.Parse(SweepProcess.Run("status", "killed", "--data-dir", DataDir, "--json").Stdout).RootElement;
        Assert.Equal("Completed", status.GetProperty("state").GetString());
        var trials = status.GetProperty("trials").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
        Assert.Equal(9, trials.Count);
        Assert.All(trials.Values, t => Assert.Equal("Completed", t.GetProperty("state").GetString()));
        Assert.True(trials["b32-lr0.01"].GetProperty("attempts").GetInt32() >= 2, "the injected exception shows as a second attempt");
        Assert.All(trials.Values, t => Assert.Equal(200, t.GetProperty("iteration").GetInt32()));
    }

    [Fact]
    public async Task Ctrl_c_checkpoints_the_running_trials_exits_130_and_resume_continues_them()
    {
        var spec = WriteSpec("");
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", "interrupted", "--data-dir", DataDir, "--workers", "2"))
        {
            run.WaitForLines(lines => lines.Count(l => l.Contains(": completed, test accuracy ")) >= 2 && lines.Any(l => l.Contains("iter 100/200")), Long);
            run.Signal(SweepProcess.SIGINT);
            Assert.Equal(130, run.WaitForExit(TimeSpan.FromMinutes(1)));
            Assert.Contains("continue with: sweep resume interrupted --data-dir", run.Stdout);
        }
        var interrupted = JsonDocument.Parse(SweepProcess.Run("status", "interrupted", "--data-dir", DataDir, "--json").Stdout).RootElement;
        Assert.Equal("Interrupted", interrupted.GetProperty("state").GetString());
        Assert.DoesNotContain(interrupted.GetProperty("trials").EnumerateArray(), t => t.GetProperty("state").GetString() == "Running");
        var before = await Events("interrupted");
        var checkpointed = before.OfType<TrialRequeued>().Where(e => e.Reason.StartsWith("sweep interrupted")).Select(e => e.TrialId).ToHashSet();
        Assert.NotEmpty(checkpointed);

        var (exit, stdout, stderr) = SweepProcess.Run("resume", "interrupted", "--data-dir", DataDir, "--workers", "2");

        Assert.True(exit == 0, stdout + stderr);
        var after = (await Events("interrupted")).Skip(before.Count).ToList();
        Assert.Contains(after.OfType<TrialStarted>(), e => checkpointed.Contains(e.TrialId) && e.FromIteration > 0);
        Assert.Equal(9, (await Events("interrupted")).OfType<TrialCompleted>().Select(e => e.TrialId).Distinct().Count());
    }

    [Fact]
    public void Ctrl_c_at_any_moment_of_the_start_leaves_either_no_trace_or_an_interrupted_sweep_with_the_resume_hint()
    {
        var spec = WriteSpec("");
        var outcomes = new List<string>();
        foreach (var (delayMs, id) in new[] { (150, "early-1"), (500, "early-2"), (900, "early-3"), (1400, "early-4") })
        {
            string stdout;
            using (var run = SweepProcess.Start("run", spec, "--sweep-id", id, "--data-dir", DataDir, "--workers", "2"))
            {
                Thread.Sleep(delayMs);
                run.Signal(SweepProcess.SIGINT);
                Assert.Equal(130, run.WaitForExit(TimeSpan.FromMinutes(1)));
                stdout = run.Stdout;
                Assert.DoesNotContain("Exception", run.Stdout + run.Stderr);
            }
            var status = SweepProcess.Run("status", id, "--data-dir", DataDir, "--json");
            if (status.ExitCode == 2)
            {
                // Interrupted before the coordinator was asked: nothing persisted, and the id is free again
                // (on a loaded machine the first signal may come before even the claim made the journal file).
                Assert.True(status.Stderr.Contains($"no sweep '{id}'") || status.Stderr.Contains("no journal here"), status.Stderr);
                Assert.DoesNotContain("continue with", stdout);
                outcomes.Add($"{delayMs} ms: no trace");
            }
            else
            {
                Assert.Equal(0, status.ExitCode);
                Assert.Equal("Interrupted", JsonDocument.Parse(status.Stdout).RootElement.GetProperty("state").GetString());
                Assert.Contains($"continue with: sweep resume {id} --data-dir", stdout);
                outcomes.Add($"{delayMs} ms: interrupted");
            }
        }
        Assert.Equal(4, outcomes.Count);
    }

    [Fact]
    public void Watch_follows_a_running_sweep_from_another_process_and_exits_when_it_ends()
    {
        var spec = WriteSpec("");
        using var run = SweepProcess.Start("run", spec, "--sweep-id", "watched", "--data-dir", DataDir, "--workers", "1");
        run.WaitForLine(l => l.Contains("started attempt"), Long);

        using var watch = SweepProcess.Start("watch", "watched", "--data-dir", DataDir);
        watch.WaitForLine(l => l.StartsWith("watching sweep watched"), Long);
        watch.WaitForLine(l => l.Contains(": iter ") && l.Contains("/200"), TimeSpan.FromSeconds(30));
        bool runStillGoing = !run.HasExited;

        Assert.Equal(0, watch.WaitForExit(Long));
        Assert.Equal(0, run.WaitForExit(Long));
        Assert.True(runStillGoing, "watch showed progress while the sweep was running");
        Assert.Contains("sweep watched completed", watch.Stdout);
        Assert.Contains("9 completed", watch.Stdout);
        // Its state, built from one read and the events after it, is the journal's: the table `status` prints, line for line.
        var status = SweepProcess.Run("status", "watched", "--data-dir", DataDir);
        var table = status.Stdout.Split('\n').TakeWhile(line => !line.StartsWith("  - ", StringComparison.Ordinal)).Select(line => line.TrimEnd('\r')).ToList();
        Assert.StartsWith("sweep watched (", table[^2]);
        Assert.Contains(string.Join('\n', table), watch.Stdout.Replace("\r", ""));
        var unknown = SweepProcess.Run("watch", "nope", "--data-dir", DataDir);
        Assert.Equal(2, unknown.ExitCode);
    }

    [Fact]
    public void Trial_events_are_logged_as_json_with_their_properties_and_logs_prints_one_trials_lines()
    {
        var spec = WriteSpec("{ trial = b32-lr0.01, at-iteration = 60, kind = exception, attempts = [1] }");
        using var run = SweepProcess.Start("run", spec, "--sweep-id", "logged", "--data-dir", DataDir, "--workers", "1", "--set", "sweep.max-iter=100");
        run.WaitForLine(l => l.Contains("started attempt"), Long);
        using (var follow = SweepProcess.Start("logs", "logged", "--data-dir", DataDir, "--follow"))
        {
            follow.WaitForLine(l => l.Contains(": completed, test accuracy "), Long);
            follow.Signal(SweepProcess.SIGINT);
            Assert.Equal(0, follow.WaitForExit(TimeSpan.FromSeconds(30)));
        }
        Assert.Equal(0, run.WaitForExit(Long));

        var files = Directory.GetFiles(Path.Combine(DataDir, "logs"), "logged-*.json");
        var trialEvents = File.ReadAllLines(Assert.Single(files))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("TrialId", out _))
            .ToList();
        Assert.NotEmpty(trialEvents);
        Assert.All(trialEvents, e =>
        {
            foreach (var property in new[] { "SweepId", "TrialId", "TrialName", "Attempt", "Node", "Worker" }) Assert.True(e.TryGetProperty(property, out _), property);
            Assert.Equal("logged", e.GetProperty("SweepId").GetString());
        });
        Assert.Contains(trialEvents, e => e.GetProperty("TrialName").GetString() == "b32-lr0.01" && e.GetProperty("Attempt").GetInt32() == 2);

        var (exit, stdout, _) = SweepProcess.Run("logs", "logged", "--data-dir", DataDir, "--trial", "b32-lr0.01");
        Assert.Equal(0, exit);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.Contains("b32-lr0.01", l));
        Assert.Contains(lines, l => l.Contains("[WRN] b32-lr0.01: attempt 1 failed") && l.Contains("injected fault"));
        Assert.Contains(lines, l => l.Contains("b32-lr0.01: completed, test accuracy "));
        Assert.Equal(2, SweepProcess.Run("logs", "logged", "--data-dir", DataDir, "--trial", "no-such-trial").ExitCode);
    }

    [Fact]
    public async Task Run_with_dashboard_serves_the_sweep_while_it_runs()
    {
        var spec = WriteSpec("");
        int port = FreePort.Next();
        using var run = SweepProcess.Start("run", spec, "--sweep-id", "served", "--data-dir", DataDir, "--dashboard", "--dashboard-port", port.ToString());
        run.WaitForLine(l => l.StartsWith("dashboard at http://127.0.0.1:"), Long);
        run.WaitForLine(l => l.Contains("started attempt"), Long);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var status = JsonDocument.Parse(await http.GetStringAsync("/api/sweeps/served")).RootElement;
        bool runStillGoing = !run.HasExited;

        Assert.Equal("served", status.GetProperty("sweepId").GetString());
        Assert.Equal(9, status.GetProperty("trials").GetArrayLength());
        Assert.True(runStillGoing);
        Assert.Equal(0, run.WaitForExit(Long));
    }

    [Fact]
    public async Task A_crash_fault_kills_only_its_worker_process_and_the_same_run_retries_the_trial_from_its_checkpoint()
    {
        var reference = await Uninterrupted(WriteSpec(""), "reference");
        var spec = WriteSpec("{ trial = b64-lr0.02, at-iteration = 120, kind = crash, attempts = [1] }");

        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "crashed", "--data-dir", DataDir, "--workers", "2");

        Assert.True(exit == 0, stdout + stderr);
        var events = await Events("crashed");
        var crashed = events.OfType<TrialStarted>().First(e => e.Attempt == 2).TrialId;
        var failed = Assert.Single(events.OfType<TrialFailed>());
        Assert.Equal((crashed, 1, false), (failed.TrialId, failed.Attempt, failed.Final));
        Assert.Matches(@"^worker process \d+ exited with signal 9 \(SIGKILL\) after iteration 100$", failed.Error);
        Assert.Equal(100, events.OfType<TrialStarted>().Single(e => e.TrialId == crashed && e.Attempt == 2).FromIteration);
        var trialLog = SweepProcess.Run("logs", "crashed", "--data-dir", DataDir, "--trial", "b64-lr0.02").Stdout;
        Assert.Contains(failed.Error, trialLog); // the worker process's death is in the trial's own log
        Assert.Equal(9, events.OfType<TrialCompleted>().Count());
        Assert.Single(events.OfType<SweepCompleted>());
        // Every trial's numbers as in the run without the crash, the crashed one's too.
        var curves = TrialCurves.FromEvents(events);
        foreach (var (trialId, curve) in TrialCurves.FromEvents(reference.Events)) AssertSameNumbers(curve, curves[trialId], 200);
    }

    [Fact]
    public async Task A_trial_that_kills_its_worker_process_on_every_attempt_ends_as_failed_after_max_attempts_and_the_sweep_ends()
    {
        var spec = WriteSpec("{ trial = b64-lr0.02, at-iteration = 120, kind = crash, attempts = [1, 2, 3] }");

        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "crash-loop", "--data-dir", DataDir, "--workers", "2");

        Assert.True(exit == 1, stdout + stderr); // the sweep ended, with a failed trial
        var events = await Events("crash-loop");
        var failures = events.OfType<TrialFailed>().ToList();
        Assert.Equal([1, 2, 3], failures.Select(f => f.Attempt));
        Assert.Equal([false, false, true], failures.Select(f => f.Final));
        Assert.All(failures, f => Assert.Matches(@"^worker process \d+ exited with signal 9 \(SIGKILL\) after iteration 100$", f.Error));
        Assert.Equal(3, failures.Select(f => f.Error).Distinct().Count()); // a new process each time
        Assert.Equal(8, events.OfType<TrialCompleted>().Count());
        Assert.Single(events.OfType<SweepCompleted>());
    }

    [Fact]
    public async Task A_worker_process_killed_mid_trial_is_started_again_and_the_trial_continues_from_its_checkpoint_with_the_uninterrupted_curve()
    {
        var spec = WriteOneTrialSpec();
        var reference = await UninterruptedOneTrial();
        using var run = SweepProcess.Start("run", spec, "--sweep-id", "worker-killed", "--data-dir", DataDir, "--workers", "1");
        run.WaitForLine(l => l.Contains("only: iter 200/400"), Long);
        var killed = Assert.Single(run.WorkerProcesses());
        // A terminal's Ctrl+C and a service manager's SIGTERM reach the whole process group: the worker process leaves them to its agent.
        Assert.Equal(0, SweepProcess.Kill(killed, SweepProcess.SIGINT));
        Assert.Equal(0, SweepProcess.Kill(killed, SweepProcess.SIGTERM));
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(SweepProcess.IsGone(killed), "a worker process ended on SIGINT or SIGTERM");
        Assert.Equal(0, SweepProcess.Kill(killed, SweepProcess.SIGKILL));

        Assert.Equal(0, run.WaitForExit(Long));
        var events = await Events("worker-killed");
        var failed = Assert.Single(events.OfType<TrialFailed>());
        Assert.StartsWith($"worker process {killed} exited with signal 9 (SIGKILL) after iteration ", failed.Error);
        var resumedAt = events.OfType<TrialStarted>().Single(e => e.Attempt == 2).FromIteration;
        Assert.Equal(events.OfType<TrialCheckpointed>().Last(e => e.At <= failed.At).Iteration, resumedAt);
        Assert.InRange(resumedAt, 150, 350);
        AssertSameNumbers(reference.Curve, TrialCurves.FromEvents(events)[reference.TrialId]);
        Assert.Contains(run.Stdout.Split('\n'), l => l.Contains("completed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Killing_the_sweep_process_takes_its_worker_processes_with_it_within_10_seconds_and_resume_completes()
    {
        var spec = WriteSpec("");
        IReadOnlyList<int> workers;
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", "orphans", "--data-dir", DataDir, "--workers", "2"))
        {
            run.WaitForLines(lines => lines.Count(l => l.Contains(": iter 100/200", StringComparison.Ordinal)) >= 2, Long);
            workers = run.WorkerProcesses();
            Assert.Equal(2, workers.Count);
            run.Signal(SweepProcess.SIGKILL);
            run.WaitForExit(TimeSpan.FromSeconds(30));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (DateTime.UtcNow < deadline && !workers.All(SweepProcess.IsGone)) await Task.Delay(100);
        }
        Assert.All(workers, pid => Assert.True(SweepProcess.IsGone(pid), $"worker process {pid} still runs 10 s after its sweep process was killed"));

        var (exit, stdout, stderr) = SweepProcess.Run("resume", "orphans", "--data-dir", DataDir, "--workers", "2");
        Assert.True(exit == 0, stdout + stderr);
        var events = await Events("orphans");
        Assert.Equal(9, events.OfType<TrialCompleted>().Select(e => e.TrialId).Distinct().Count());
        Assert.Equal(9, events.OfType<TrialCompleted>().Count());
    }

    /// <summary>One synthetic trial, 400 iterations of 20 ms, tested and checkpointed every 50.</summary>
    private string WriteOneTrialSpec() => WriteOneTrialSpec(temp);

    private static string WriteOneTrialSpec(string folder)
    {
        var path = Path.Combine(folder, "one.conf");
        File.WriteAllText(path, """
            sweep {
              name = one
              model = synthetic
              max-iter = 400
              test-interval = 50
              cases = [ { name = only, batch-size = 32, base-lr = 0.01 } ]
              synthetic { iteration-ms = 20 }
            }
            """);
        return path;
    }

    /// <summary>The trial of <paramref name="sweepId"/> run without interruption: its curve, and the checkpoint files it left.</summary>
    /// <summary>The one-trial spec run uninterrupted: its trial id, curve, checkpoint file names and the folder that holds them.</summary>
    private sealed record OneTrialReference(string TrialId, IReadOnlyList<TrialMetrics> Curve, string[] Files, string CheckpointDirectory);

    private static readonly SemaphoreSlim OneTrialGate = new(1, 1);
    private static OneTrialReference? oneTrial;

    /// <summary>
    /// <see cref="WriteOneTrialSpec()"/>'s trial run uninterrupted by `sweep run`, once per test process
    /// (the trial is deterministic: every run gives the same curve and files, which the runs of
    /// SweepRunEndToEndTests of 2026-11 showed), in a folder of its own that outlives the test that
    /// first needed it. Five tests compare against it; running it once saves about 45 s of CI.
    /// </summary>
    private static async Task<OneTrialReference> UninterruptedOneTrial()
    {
        await OneTrialGate.WaitAsync();
        try
        {
            if (oneTrial is not null) return oneTrial;
            string folder = Directory.CreateTempSubdirectory("sweep-one-trial-reference-").FullName;
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                try
                {
                    Directory.Delete(folder, recursive: true);
                }
                catch (IOException)
                {
                }
            };
            string dataDir = Path.Combine(folder, "data");
            var (exit, stdout, stderr) = SweepProcess.Run("run", WriteOneTrialSpec(folder), "--sweep-id", "reference", "--data-dir", dataDir, "--workers", "1");
            Assert.True(exit == 0, stdout + stderr);
            var events = await SweepJournal.EventsAsync(new JournalSettings(dataDir), "reference");
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            var (trialId, curve) = TrialCurves.FromEvents(events).Single();
            string checkpoints = Path.Combine(dataDir, "checkpoints", "reference");
            return oneTrial = new OneTrialReference(trialId, curve, FileNames(checkpoints), checkpoints);
        }
        finally
        {
            OneTrialGate.Release();
        }
    }

    private async Task<(string TrialId, IReadOnlyList<TrialMetrics> Curve, string[] Files, IReadOnlyList<ISweepEvent> Events)> Uninterrupted(string spec, string sweepId)
    {
        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", sweepId, "--data-dir", DataDir, "--workers", "1");
        Assert.True(exit == 0, stdout + stderr);
        var events = await Events(sweepId);
        var curves = TrialCurves.FromEvents(events);
        // A sweep of one trial gives its id and curve; a larger one only its events.
        var (trialId, curve) = curves.Count == 1 ? curves.Single() : new KeyValuePair<string, IReadOnlyList<TrialMetrics>>("", []);
        return (trialId, curve, CheckpointFileNames(sweepId), events);
    }

    private string[] CheckpointFileNames(string sweepId) => FileNames(Path.Combine(DataDir, "checkpoints", sweepId));

    private static string[] FileNames(string directory) =>
        Directory.GetFiles(directory).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray();

    /// <summary>Runs <paramref name="sweepId"/> until its trial has reported iteration 200 of 400, then kills the process with SIGKILL.</summary>
    private async Task<TrialCheckpointed> KillMidTrial(string spec, string sweepId)
    {
        using (var run = SweepProcess.Start("run", spec, "--sweep-id", sweepId, "--data-dir", DataDir, "--workers", "1"))
        {
            run.WaitForLine(l => l.Contains("only: iter 200/400"), Long);
            run.Signal(SweepProcess.SIGKILL);
            run.WaitForExit(TimeSpan.FromSeconds(30));
        }
        var events = await Events(sweepId);
        Assert.DoesNotContain(events, e => e is TrialCompleted);
        // The test point at 200 is persisted, so the checkpoint at 150 before it is too.
        var journalled = events.OfType<TrialCheckpointed>().Last();
        Assert.InRange(journalled.Iteration, 150, 350);
        Assert.Equal(Path.Combine(DataDir, "checkpoints", sweepId, $"{journalled.TrialId}.it{journalled.Iteration:D9}.ckpt"), journalled.Path);
        Assert.True(File.Exists(journalled.Path));
        return journalled;
    }

    /// <summary>Every number of two curves, point by point, compared exactly (only wall-clock seconds differ between runs).</summary>
    private static void AssertSameNumbers(IReadOnlyList<TrialMetrics> expected, IReadOnlyList<TrialMetrics> actual, int maxIter = 400)
    {
        Assert.Equal(Enumerable.Range(0, maxIter / 50 + 1).Select(i => 50 * i), actual.Select(m => m.Iteration)); // every test point once: no hole, no repeat
        Assert.Equal(
            expected.Select(m => (m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate, m.PeakMemoryBytes)),
            actual.Select(m => (m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate, m.PeakMemoryBytes)));
    }

    [Fact]
    public async Task A_checkpoint_newer_than_the_journal_is_never_used_resume_continues_from_the_journalled_one_with_the_uninterrupted_curve()
    {
        var spec = WriteOneTrialSpec();
        var reference = await UninterruptedOneTrial();
        // Acknowledged checkpoints replace the ones before them: an uninterrupted trial leaves its last one only.
        Assert.Equal([$"{reference.TrialId}.it000000350.ckpt"], reference.Files);

        var journalled = await KillMidTrial(spec, "journal-behind");
        // What a journal failure leaves: a real, newer checkpoint of this trial next to the journalled
        // one, which the journal never recorded (here the uninterrupted run's, at 350).
        var newer = Path.Combine(DataDir, "checkpoints", "journal-behind", $"{reference.TrialId}.it000000350.ckpt");
        File.Copy(Path.Combine(reference.CheckpointDirectory, reference.Files[0]), newer, overwrite: true);
        var before = await Events("journal-behind");

        var (exit, stdout, stderr) = SweepProcess.Run("resume", "journal-behind", "--data-dir", DataDir, "--workers", "1");

        Assert.True(exit == 0, stdout + stderr);
        var events = await Events("journal-behind");
        var started = Assert.Single(events.Skip(before.Count).OfType<TrialStarted>());
        Assert.Equal((2, journalled.Iteration), (started.Attempt, started.FromIteration));
        Assert.DoesNotContain(events, e => e is TrialRestartedFromScratch);
        Assert.Single(events.OfType<TrialCompleted>());
        // The resumed attempt reported the points after the journalled checkpoint, and only those.
        Assert.Equal(Enumerable.Range(journalled.Iteration / 50 + 1, 8 - journalled.Iteration / 50).Select(i => 50 * i),
            events.OfType<TrialProgress>().Where(p => p.Attempt == 2).Select(p => p.Metrics.Iteration));
        AssertSameNumbers(reference.Curve, TrialCurves.FromEvents(events)[reference.TrialId]);
        Assert.Equal(reference.Files, CheckpointFileNames("journal-behind"));
    }

    [Theory]
    [InlineData("truncated", "damaged checkpoint (JsonException: ")]
    [InlineData("of another trial", "checkpoint belongs to another trial (")]
    [InlineData("of another iteration", "checkpoint holds iteration ")]
    public async Task A_damaged_journalled_checkpoint_restarts_the_trial_from_scratch_once_with_the_reason_and_the_uninterrupted_curve(string damage, string reason)
    {
        var spec = WriteOneTrialSpec();
        var reference = await UninterruptedOneTrial();
        var journalled = await KillMidTrial(spec, "damaged");
        var bytes = File.ReadAllBytes(journalled.Path);
        var json = System.Text.Json.Nodes.JsonNode.Parse(bytes)!;
        switch (damage)
        {
            case "truncated":
                File.WriteAllBytes(journalled.Path, bytes[..(bytes.Length / 2)]); // an interrupted copy
                break;
            case "of another trial":
                json["fingerprint"] = "b32-lr0.5-something-else"; // another trial's file copied over it
                File.WriteAllText(journalled.Path, json.ToJsonString());
                break;
            default:
                json["iteration"] = journalled.Iteration - 50; // an older file renamed to the journalled name
                File.WriteAllText(journalled.Path, json.ToJsonString());
                break;
        }
        var before = await Events("damaged");

        var (exit, stdout, stderr) = SweepProcess.Run("resume", "damaged", "--data-dir", DataDir, "--workers", "1");

        Assert.True(exit == 0, stdout + stderr);
        var events = await Events("damaged");
        var restarted = Assert.Single(events.OfType<TrialRestartedFromScratch>());
        Assert.Equal((reference.TrialId, 2, journalled.Path), (restarted.TrialId, restarted.Attempt, restarted.Path));
        Assert.StartsWith(reason, restarted.Reason);
        Assert.Equal(journalled.Iteration, Assert.Single(events.Skip(before.Count).OfType<TrialStarted>()).FromIteration);
        Assert.Single(events.OfType<TrialCompleted>());
        Assert.Empty(events.OfType<TrialFailed>());
        Assert.Equal(Enumerable.Range(0, 9).Select(i => 50 * i), events.OfType<TrialProgress>().Where(p => p.Attempt == 2).Select(p => p.Metrics.Iteration));
        AssertSameNumbers(reference.Curve, TrialCurves.FromEvents(events)[reference.TrialId]);
        Assert.Equal(reference.Files, CheckpointFileNames("damaged"));

        var logs = SweepProcess.Run("logs", "damaged", "--data-dir", DataDir, "--trial", "only").Stdout;
        Assert.Contains(logs.Split('\n'), l => l.Contains("[WRN] only: its checkpoint cannot be used (" + reason) && l.EndsWith("): starting from scratch", StringComparison.Ordinal));
    }

    [Fact]
    public void Bad_specs_exit_2_with_one_line_and_persist_nothing()
    {
        var spec = Path.Combine(temp, "bad.conf");
        File.WriteAllText(spec, "sweep { name = bad, model = synthetic, grid { batch-size = [0] , base-lr = [0.01] } }");

        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--data-dir", DataDir);

        Assert.Equal(2, exit);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("bad.conf", stderr);
        Assert.False(File.Exists(Path.Combine(DataDir, "journal.db")), stdout);
    }

    [Theory]
    [InlineData("needs a journal every node reaches", "worker", "--join", "127.0.0.1:4053", "--journal", "other.db")]
    [InlineData("expected HOST:PORT", "worker", "--join", "nowhere")]
    [InlineData("the first node of a cluster needs a fixed port", "run", "SPEC", "--port", "0")]
    [InlineData("--port must be 0-65535", "worker", "--join", "127.0.0.1:4053", "--port", "70000")]
    [InlineData("--workers 0: a sweep on this machine alone needs at least one worker slot", "run", "SPEC", "--workers", "0")]
    [InlineData("--journal: not a valid PostgreSQL connection string: Couldn't set databse", "run", "SPEC", "--journal", "Host=localhost;Databse=sweeps")]
    [InlineData("--journal: not a valid PostgreSQL connection string: Couldn't set databse", "status", "--journal", "Host=localhost;Databse=sweeps")]
    public void Bad_cluster_flags_exit_2_with_one_line(string says, params string[] args)
    {
        var spec = WriteSpec("");
        var (exit, _, stderr) = SweepProcess.Run([.. args.Select(a => a == "SPEC" ? spec : a), "--data-dir", DataDir]);

        Assert.Equal(2, exit);
        Assert.Contains(says, stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(Directory.Exists(DataDir) && Directory.EnumerateFileSystemEntries(DataDir).Any(), "bad input leaves nothing behind");
    }

    /// <summary>
    /// A malformed PostgreSQL connection string (one Npgsql cannot parse, a port that is not a
    /// number, a "Server=" string that was once taken for a SQLite path) is bad input in one line;
    /// a SQLite file whose name has ';' and '=' in it still works.
    /// </summary>
    [Theory]
    [InlineData("Server=localhost;Database", "Format of the initialization string does not conform to specification starting at index 17.")]
    [InlineData("Host=localhost;Port=abc", "Couldn't set port (Parameter 'port'): The input string 'abc' was not in a correct format.")]
    [InlineData("Host=;Database=sweep;Password=hunter2", "it names no host (Host=…)")]
    public void A_malformed_postgresql_connection_string_is_one_line_and_exit_2(string journal, string reason)
    {
        var (exit, stdout, stderr) = SweepProcess.Run("run", WriteSpec(""), "--journal", journal, "--data-dir", DataDir);

        Assert.Equal(2, exit);
        Assert.Equal($"sweep: --journal: not a valid PostgreSQL connection string: {reason} (keys are Host, Port, Database, Username, Password, …)",
            Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.DoesNotContain("   at ", stdout + stderr);
        Assert.DoesNotContain("hunter2", stdout + stderr);
        Assert.False(Directory.Exists(DataDir), "nothing is persisted");
    }

    [Fact]
    public async Task A_sqlite_journal_whose_name_has_semicolons_and_equals_signs_works()
    {
        var odd = Path.Combine(temp, "odd", "a=b;c.db");
        var spec = WriteSpec("");

        var (exit, _, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "odd", "--journal", odd, "--data-dir", DataDir, "--set", "sweep.max-iter=20", "--set", "sweep.grid.batch-size=[16]");

        Assert.True(exit == 0, stderr);
        Assert.True(File.Exists(odd));
        Assert.Equal(3, (await SweepJournal.ReadAsync(new JournalSettings(DataDir, odd), "odd"))!.Trials.Count);
    }

    [Fact]
    public void Status_and_resume_of_unknown_sweeps_exit_2()
    {
        var (exit, _, stderr) = SweepProcess.Run("status", "--data-dir", Path.Combine(temp, "empty"));
        Assert.Equal(2, exit);
        Assert.Contains("no journal", stderr);

        var spec = WriteSpec("");
        Assert.Equal(0, SweepProcess.Run("run", spec, "--sweep-id", "known", "--data-dir", DataDir, "--set", "sweep.max-iter=20", "--set", "sweep.grid.batch-size=[16]").ExitCode);
        var resume = SweepProcess.Run("resume", "unknown", "--data-dir", DataDir);
        Assert.Equal(2, resume.ExitCode);
        Assert.Contains("no sweep 'unknown'", resume.Stderr);
        var list = SweepProcess.Run("status", "--data-dir", DataDir);
        Assert.Contains("known", list.Stdout);
    }

    private async Task<IReadOnlyList<ISweepEvent>> Events(string sweepId)
    {
        return await SweepJournal.EventsAsync(new JournalSettings(DataDir), sweepId);
    }
}
