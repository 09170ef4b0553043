using System.Globalization;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol.Events;

namespace Sweep.Orchestrator.Tests;

/// <summary>
/// `model = command` through the real `sweep run`: the user's program (a Python script here, the
/// standard library only) gets each trial's parameters and reports its own numbers, which the
/// journal keeps exactly; a divergence it prints is a divergence; a worker process killed mid-trial
/// takes the program with it, and the next attempt continues from the program's own checkpoint.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class CommandTrialEndToEndTests : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(3);
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-command-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string DataDir => Path.Combine(temp, "data");

    /// <summary>
    /// Gradient descent on w² from w = 1: w ← w − lr·2w·(batch/32) per iteration; a test point
    /// (train loss w², test accuracy 1 − w²/(1 + w²)) at 0, every test interval and at the end; a
    /// checkpoint (w and the iteration) at every test point but the last, in SWEEP_CHECKPOINT_DIR;
    /// continues from SWEEP_RESUME_FROM. Python's floats are IEEE doubles with the same operations
    /// in the same order as <see cref="Reference"/>.
    /// </summary>
    private const string Script = """
        import argparse, json, os, sys, time
        p = argparse.ArgumentParser()
        p.add_argument("--lr", type=float, required=True)
        p.add_argument("--batch-size", type=int, required=True)
        p.add_argument("--max-iter", type=int, required=True)
        p.add_argument("--test-interval", type=int, required=True)
        p.add_argument("--sleep", type=float, default=0.0)
        a = p.parse_args()
        assert os.environ["SWEEP_PARAM_BASE_LR"] == sys.argv[sys.argv.index("--lr") + 1]
        checkpoints = os.environ["SWEEP_CHECKPOINT_DIR"]
        it, w = 0, 1.0
        resume = os.environ.get("SWEEP_RESUME_FROM")
        if resume and os.path.exists(os.path.join(resume, "state.json")):
            with open(os.path.join(resume, "state.json")) as f:
                state = json.load(f)
            it, w = state["iteration"], state["w"]
        print("starting at iteration", it, "attempt", os.environ["SWEEP_ATTEMPT"])
        def test_point():
            loss = w * w
            print(json.dumps({"iteration": it, "train-loss": loss, "test-accuracy": 1.0 - loss / (1.0 + loss)}), flush=True)
        if it == 0:
            test_point()
        while it < a.max_iter:
            w = w - a.lr * 2 * w * (a.batch_size / 32.0)
            it += 1
            time.sleep(a.sleep)
            if it % a.test_interval == 0 or it == a.max_iter:
                test_point()
                if it < a.max_iter:
                    with open(os.path.join(checkpoints, "state.tmp"), "w") as f:
                        json.dump({"iteration": it, "w": w}, f)
                    os.replace(os.path.join(checkpoints, "state.tmp"), os.path.join(checkpoints, "state.json"))
                    print(json.dumps({"checkpoint": it}), flush=True)
        """;

    /// <summary>The script's test points, computed here: (iteration, train loss, test accuracy).</summary>
    private static List<(int Iteration, double Loss, double Accuracy)> Reference(double lr, int batch, int maxIter, int testInterval)
    {
        var points = new List<(int, double, double)>();
        double w = 1.0;
        void Point(int it)
        {
            double loss = w * w;
            points.Add((it, loss, 1.0 - loss / (1.0 + loss)));
        }
        Point(0);
        for (int it = 1; it <= maxIter; it++)
        {
            w = w - lr * 2 * w * (batch / 32.0);
            if (it % testInterval == 0 || it == maxIter) Point(it);
        }
        return points;
    }

    private string WriteSpec(string trials, int maxIter, int testInterval, double sleep)
    {
        File.WriteAllText(Path.Combine(temp, "train.py"), Script);
        var path = Path.Combine(temp, "mine.conf");
        File.WriteAllText(path, $$"""
            sweep {
              name = mine
              model = command
              max-iter = {{maxIter}}
              test-interval = {{testInterval}}
              {{trials}}
              retry { max-attempts = 3, backoff = 0.1 }
              command {
                arguments = ["python3", "${spec-dir}/train.py", "--lr", "${base-lr}", "--batch-size", "${batch-size}",
                             "--max-iter", "${max-iter}", "--test-interval", "${test-interval}", "--sleep", "{{sleep.ToString(CultureInfo.InvariantCulture)}}"]
              }
            }
            """);
        return path;
    }

    private async Task<IReadOnlyList<ISweepEvent>> Events(string sweepId) => await SweepJournal.EventsAsync(new JournalSettings(DataDir), sweepId);

    [Fact]
    public async Task Each_trial_runs_the_program_with_its_parameters_and_the_journal_holds_the_programs_own_numbers_and_a_printed_NaN_is_a_divergence()
    {
        var spec = WriteSpec("grid { batch-size = [16, 32], base-lr = [0.01, 0.1] }\n  cases = [ { name = wild, batch-size = 32, base-lr = 1e100 } ]", maxIter: 30, testInterval: 10, sleep: 0);

        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "cmd", "--data-dir", DataDir, "--workers", "2");

        Assert.True(exit == 0, $"a diverged trial is a finding, not a failure (exit code 0, as for the paper's CASE8): {exit}\n{stdout}\n{stderr}");
        var events = await Events("cmd");
        var definition = ((SweepStarted)events[0]).Definition;
        foreach (var trial in definition.Trials)
        {
            var expected = Reference(trial.Spec.BaseLr, trial.Spec.BatchSize, 30, 10);
            var reported = events.OfType<TrialProgress>().Where(p => p.TrialId == trial.Id).Select(p => p.Metrics).ToList();
            int firstNonFinite = expected.FindIndex(p => !double.IsFinite(p.Loss) || !double.IsFinite(p.Accuracy));
            if (firstNonFinite < 0)
            {
                Assert.Equal(expected.Select(p => (p.Iteration, p.Loss, p.Accuracy)), reported.Select(m => (m.Iteration, m.TrainLoss, m.TestAccuracy)));
                Assert.Single(events.OfType<TrialCompleted>(), c => c.TrialId == trial.Id);
            }
            else
            {
                // The points before it are reported as printed; at it the trial diverges.
                Assert.Equal(expected.Take(firstNonFinite).Select(p => (p.Iteration, p.Loss, p.Accuracy)), reported.Select(m => (m.Iteration, m.TrainLoss, m.TestAccuracy)).Take(firstNonFinite));
                var diverged = Assert.Single(events.OfType<TrialDiverged>(), d => d.TrialId == trial.Id);
                Assert.Equal(expected[firstNonFinite].Iteration, diverged.Iteration);
            }
        }
        Assert.Equal(4, events.OfType<TrialCompleted>().Count());
        Assert.Contains("wild: DIVERGED at iteration 10", stdout);
        // The program's other lines are its log, in the trial's log file.
        var logs = SweepProcess.Run("logs", "cmd", "--data-dir", DataDir, "--trial", "wild");
        Assert.Contains("starting at iteration 0 attempt 1", logs.Stdout);
    }

    [Fact]
    public async Task A_worker_process_killed_mid_trial_takes_the_program_with_it_and_the_next_attempt_continues_from_the_programs_checkpoint_to_the_same_numbers()
    {
        var spec = WriteSpec("cases = [ { name = only, batch-size = 32, base-lr = 0.01 } ]", maxIter: 60, testInterval: 10, sleep: 0.05);
        using var run = SweepProcess.Start("run", spec, "--sweep-id", "killed", "--data-dir", DataDir, "--workers", "1");
        run.WaitForLine(l => l.Contains("only: iter 30/60", StringComparison.Ordinal), Long);
        var worker = Assert.Single(run.WorkerProcesses());
        var program = Assert.Single(SweepProcess.ChildProcesses(worker));
        Assert.Contains("train.py", SweepProcess.CommandLine(program));

        Assert.Equal(0, SweepProcess.Kill(worker, SweepProcess.SIGKILL));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline && !SweepProcess.IsGone(program)) await Task.Delay(100);
        Assert.True(SweepProcess.IsGone(program), $"the program {program} still runs 10 s after its worker process was killed");

        Assert.Equal(0, run.WaitForExit(Long));
        var events = await Events("killed");
        var second = events.OfType<TrialStarted>().Single(e => e.Attempt == 2);
        Assert.InRange(second.FromIteration, 30, 50);
        Assert.Equal(events.OfType<TrialCheckpointed>().Where(c => c.Attempt == 1).Max(c => c.Iteration), second.FromIteration);
        // Every test point of the finished trial, the first attempt's up to its checkpoint and then the second's, is the uninterrupted run's.
        var expected = Reference(0.01, 32, 60, 10);
        var kept = events.OfType<TrialProgress>()
            .Where(p => p.Attempt == 2 || p.Metrics.Iteration <= second.FromIteration)
            .Select(p => (p.Metrics.Iteration, p.Metrics.TrainLoss, p.Metrics.TestAccuracy))
            .DistinctBy(p => p.Iteration);
        Assert.Equal(expected.Select(p => (p.Iteration, p.Loss, p.Accuracy)), kept);
        Assert.Single(events.OfType<TrialCompleted>());
    }

    [Fact]
    public async Task A_program_that_exits_3_on_its_first_two_attempts_is_retried_and_completes_on_its_third()
    {
        File.WriteAllText(Path.Combine(temp, "flaky.sh"), """
            #!/bin/sh
            if [ "$SWEEP_ATTEMPT" -lt 3 ]; then echo "not this time ($SWEEP_ATTEMPT)" >&2; exit 3; fi
            echo '{"iteration": 0, "test-accuracy": 0.25}'
            echo "{\"iteration\": $SWEEP_PARAM_MAX_ITER, \"test-accuracy\": 0.75}"
            """);
        var spec = Path.Combine(temp, "flaky.conf");
        File.WriteAllText(spec, """
            sweep {
              name = flaky
              model = command
              max-iter = 5
              cases = [ { name = only, batch-size = 8, base-lr = 0.1 } ]
              retry { max-attempts = 3, backoff = 0.1 }
              command { arguments = ["sh", "${spec-dir}/flaky.sh"] }
            }
            """);

        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "flaky", "--data-dir", DataDir, "--workers", "1");

        Assert.True(exit == 0, stdout + stderr);
        var events = await Events("flaky");
        var failures = events.OfType<TrialFailed>().ToList();
        Assert.Equal([(1, false), (2, false)], failures.Select(f => (f.Attempt, f.Final)));
        Assert.All(failures, f => Assert.Equal($"program exited with code 3; last line on stderr: not this time ({f.Attempt})", f.Error));
        Assert.Equal(3, Assert.Single(events.OfType<TrialCompleted>()).Attempt);
        Assert.Equal([0.25, 0.75], events.OfType<TrialProgress>().Select(p => p.Metrics.TestAccuracy));
    }

    [Fact]
    public void A_program_that_is_not_there_is_one_line_and_exit_2_before_anything_is_persisted()
    {
        var spec = WriteSpec("cases = [ { name = only, batch-size = 32, base-lr = 0.01 } ]", maxIter: 10, testInterval: 5, sleep: 0);
        File.Delete(Path.Combine(temp, "train.py"));
        File.WriteAllText(spec, File.ReadAllText(spec).Replace("\"python3\", \"${spec-dir}/train.py\"", "\"${spec-dir}/train.py\""));

        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "missing", "--data-dir", DataDir, "--workers", "1");

        Assert.Equal(2, exit);
        Assert.Equal($"sweep: {spec}: sweep.command.arguments[0]: no such program: {temp}/train.py (or it is not executable)", stderr.Trim());
        Assert.DoesNotContain("   at ", stdout + stderr);
        Assert.False(Directory.Exists(DataDir), "nothing is persisted for a spec that is refused");
    }
}
