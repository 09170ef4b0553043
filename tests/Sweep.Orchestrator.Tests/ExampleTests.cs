using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol.Events;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests;

/// <summary>
/// examples/numpy-mlp, the command trial in Python with NumPy only, as it is in the repository: its
/// backward pass against central differences, its sweep through the real `sweep run` against the
/// same program run alone, and an interrupted-then-resumed trial against an uninterrupted run,
/// number for number (Debian's python3-numpy; scripts/test.sh installs it when missing).
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class ExampleTests : IDisposable
{
    /// <summary>The interpreter examples/numpy-mlp/sweep.conf names: Debian's, where python3-numpy installs.</summary>
    private const string Python = "/usr/bin/python3";

    private static readonly TimeSpan Long = TimeSpan.FromMinutes(3);
    private static readonly string Example = Path.Combine(RepositoryFiles.Root, "examples", "numpy-mlp");
    private static readonly string Spec = Path.Combine(Example, "sweep.conf");
    private static readonly string TrainPy = Path.Combine(Example, "train.py");
    private static readonly string Mnist = Path.Combine(RepositoryFiles.Root, "data", "mnist-10k");
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-example-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string DataDir => Path.Combine(temp, "data");

    /// <summary>A test point as the journal keeps it and as the program prints it.</summary>
    private sealed record Point(int Iteration, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy, double LearningRate);

    private static Point Of(Sweep.Protocol.Training.TrialMetrics m) => new(m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate);

    /// <summary>Runs a Python program to its end, with an empty standard input and extra environment variables.</summary>
    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunPython(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Long);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// The example's train.py run alone, outside any sweep, with the arguments the spec gives a trial
    /// (written here from the trial's parameters, not taken from the sweep) and a checkpoint folder of
    /// its own: the test points it prints.
    /// </summary>
    private async Task<List<Point>> Standalone(double lr, int batch, int maxIter, int testInterval, int seed, long hidden)
    {
        var checkpoints = Directory.CreateDirectory(Path.Combine(temp, "alone-" + Guid.NewGuid().ToString("N"))).FullName;
        var (exit, stdout, stderr) = await RunPython(new Dictionary<string, string> { ["SWEEP_CHECKPOINT_DIR"] = checkpoints },
            TrainPy, "--data", Mnist, "--lr", lr.ToString("R", CultureInfo.InvariantCulture), "--batch-size", Text(batch),
            "--max-iter", Text(maxIter), "--test-interval", Text(testInterval), "--seed", Text(seed),
            "--hidden", hidden.ToString(CultureInfo.InvariantCulture));
        Assert.True(exit == 0, $"train.py alone exited {exit}\n{stdout}\n{stderr}");
        var points = new List<Point>();
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!line.StartsWith('{')) continue;
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            if (!root.TryGetProperty("iteration", out var iteration)) continue;
            points.Add(new Point(iteration.GetInt32(), root.GetProperty("train-loss").GetDouble(), root.GetProperty("train-accuracy").GetDouble(),
                root.GetProperty("test-loss").GetDouble(), root.GetProperty("test-accuracy").GetDouble(), root.GetProperty("learning-rate").GetDouble()));
        }
        var expected = Enumerable.Range(0, maxIter / testInterval + 1).Select(k => k * testInterval).Append(maxIter).Distinct();
        Assert.Equal(expected, points.Select(p => p.Iteration));
        return points;
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private async Task<IReadOnlyList<ISweepEvent>> Events(string sweepId) => await SweepJournal.EventsAsync(new JournalSettings(DataDir), sweepId);

    [Fact]
    public async Task The_backward_pass_matches_central_differences_and_a_backward_pass_without_the_ReLU_derivative_does_not()
    {
        var (exit, stdout, stderr) = await RunPython(new Dictionary<string, string>(), TrainPy, "--data", Mnist, "--check-gradient");

        Assert.True(exit == 0, $"{exit}\n{stdout}\n{stderr}");
        Assert.InRange(MaxRelativeError(stdout), 0, 1e-6);

        // The same check on a copy whose backward pass forgets the ReLU's derivative fails it.
        const string reluDerivative = "    dh = dh * (h_pre > 0)  # the ReLU's derivative\n";
        var source = File.ReadAllText(TrainPy);
        Assert.Contains(reluDerivative, source);
        var broken = Path.Combine(temp, "broken.py");
        File.WriteAllText(broken, source.Replace(reluDerivative, "", StringComparison.Ordinal));
        var wrong = await RunPython(new Dictionary<string, string>(), broken, "--data", Mnist, "--check-gradient");
        Assert.True(wrong.ExitCode == 1, $"{wrong.ExitCode}\n{wrong.Stdout}\n{wrong.Stderr}");
        Assert.True(MaxRelativeError(wrong.Stdout) > 1e-2, wrong.Stdout);

        static double MaxRelativeError(string output)
        {
            using var json = JsonDocument.Parse(output.Trim());
            Assert.True(json.RootElement.GetProperty("parameters").GetInt32() > 1000, output);
            return json.RootElement.GetProperty("max-relative-error").GetDouble();
        }
    }

    [Fact]
    public async Task The_example_sweep_stores_for_every_trial_exactly_the_test_points_train_py_prints_when_run_alone()
    {
        var (exit, stdout, stderr) = SweepProcess.Run("run", Spec, "--sweep-id", "mlp", "--data-dir", DataDir, "--workers", "2",
            "--set", "sweep.max-iter=60", "--set", "sweep.test-interval=20");

        Assert.True(exit == 0, $"{exit}\n{stdout}\n{stderr}");
        var events = await Events("mlp");
        var definition = ((SweepStarted)events[0]).Definition;
        Assert.Equal(Python, definition.Command!.Arguments[0]);
        Assert.Equal([(32, 64L), (32, 128L), (64, 64L), (64, 128L)], definition.Trials.Select(t => (t.Spec.BatchSize, Hidden(t.Spec))).Order());
        var finals = new List<double>();
        foreach (var trial in definition.Trials)
        {
            var alone = await Standalone(trial.Spec.BaseLr, trial.Spec.BatchSize, maxIter: 60, testInterval: 20, trial.Spec.Seed, Hidden(trial.Spec));
            finals.Add(alone[^1].TestLoss);
            var journal = events.OfType<TrialProgress>().Where(p => p.TrialId == trial.Id).Select(p => Of(p.Metrics));
            Assert.Equal(alone, journal);
            Assert.Single(events.OfType<TrialCompleted>(), c => c.TrialId == trial.Id);
        }
        Assert.Equal(4, events.OfType<TrialCompleted>().Count());
        // The hidden width reached the program: the two widths of one batch size compute different numbers.
        Assert.Equal(4, finals.Distinct().Count());

        // status, status --json and the report's trials.csv show each trial's own parameter, typed.
        var table = SweepProcess.Run("status", "mlp", "--data-dir", DataDir).Stdout.Split('\n');
        Assert.Equal(["trial", "batch", "base", "lr", "hidden", "state"], table[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)[..6]);
        using var status = JsonDocument.Parse(SweepProcess.Run("status", "mlp", "--data-dir", DataDir, "--json").Stdout);
        var report = Path.Combine(temp, "report");
        Assert.Equal(0, SweepProcess.Run("report", "mlp", "--data-dir", DataDir, "--out", report).ExitCode);
        var csv = File.ReadAllLines(Path.Combine(report, "trials.csv"));
        int hiddenColumn = Array.IndexOf(csv[0].Split(','), "hidden");
        foreach (var trial in definition.Trials)
        {
            var row = status.RootElement.GetProperty("trials").EnumerateArray().Single(t => t.GetProperty("id").GetString() == trial.Id);
            Assert.Equal(JsonValueKind.Number, row.GetProperty("parameters").GetProperty("hidden").ValueKind);
            Assert.Equal(Hidden(trial.Spec), row.GetProperty("parameters").GetProperty("hidden").GetInt64());
            Assert.Contains(table, line => line.StartsWith(trial.Name + " ", StringComparison.Ordinal) && line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3] == Hidden(trial.Spec).ToString(CultureInfo.InvariantCulture));
            Assert.Equal(Hidden(trial.Spec).ToString(CultureInfo.InvariantCulture), csv.Single(line => line.StartsWith($"\"{trial.Id}\"", StringComparison.Ordinal)).Split(',')[hiddenColumn]);
        }
    }

    /// <summary>The trial's own parameter <c>hidden</c>, the MLP's width.</summary>
    private static long Hidden(TrialSpec spec) => spec.Parameters?.Get("hidden")?.AsInteger() ?? throw new InvalidOperationException("the trial has no hidden parameter");

    [Fact]
    public async Task A_trial_interrupted_by_SIGINT_and_resumed_prints_exactly_the_numbers_of_an_uninterrupted_run()
    {
        const int maxIter = 1000, testInterval = 100;
        using (var run = SweepProcess.Start("run", Spec, "--sweep-id", "stopped", "--data-dir", DataDir, "--workers", "1",
                   "--set", "sweep.grid.batch-size=[32]", "--set", "sweep.grid.base-lr=[0.05]", "--set", "sweep.grid.hidden=[128]",
                   "--set", $"sweep.max-iter={maxIter}", "--set", $"sweep.test-interval={testInterval}"))
        {
            // Past the first checkpoint (iteration 100): the sweep stops the program with SIGTERM, it checkpoints where it is.
            run.WaitForLine(l => l.Contains($"b32-lr0.05: iter 200/{maxIter}", StringComparison.Ordinal), Long);
            run.Signal(SweepProcess.SIGINT);
            Assert.Equal(130, run.WaitForExit(Long));
        }
        var stoppedAt = (await Events("stopped")).OfType<TrialCheckpointed>().Max(c => c.Iteration);
        Assert.InRange(stoppedAt, 200, maxIter - 1);

        var (exit, stdout, stderr) = SweepProcess.Run("resume", "stopped", "--data-dir", DataDir);

        Assert.True(exit == 0, $"{exit}\n{stdout}\n{stderr}");
        var events = await Events("stopped");
        var trial = Assert.Single(((SweepStarted)events[0]).Definition.Trials);
        var resumed = events.OfType<TrialStarted>().Last();
        Assert.Equal(stoppedAt, resumed.FromIteration);
        Assert.True(resumed.Attempt > 1, $"the resumed run is a later attempt: {resumed.Attempt}");
        // The first attempt's points up to the checkpoint it was resumed from, then the resumed attempt's.
        var kept = events.OfType<TrialProgress>()
            .Where(p => p.Attempt == resumed.Attempt || p.Metrics.Iteration <= resumed.FromIteration)
            .Select(p => Of(p.Metrics));
        var alone = await Standalone(trial.Spec.BaseLr, trial.Spec.BatchSize, maxIter, testInterval, trial.Spec.Seed, Hidden(trial.Spec));
        Assert.Equal(alone, kept);
        Assert.Single(events.OfType<TrialCompleted>());
        var logs = SweepProcess.Run("logs", "stopped", "--data-dir", DataDir, "--trial", "b32-lr0.05");
        Assert.Contains($"resuming from iteration {stoppedAt}", logs.Stdout);
    }
}
