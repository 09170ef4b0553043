using System.Reflection;
using Sweep.GpuWorker.Training;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol.Events;
using Sweep.Protocol.Training;
using Sweep.Training;
using TorchSharp;

namespace Sweep.Orchestrator.Tests;

/// <summary>
/// examples/torchsharp-mlp, the plug-in model (an MLP with dropout), as it is in the repository: its
/// sweep through the real `sweep run` against the same model trained alone in this process through
/// the interface (a context of the test's own, no worker, no journal), number for number; dropout
/// changing the numbers; a trial whose worker process is killed with -9, and a sweep stopped with
/// SIGTERM and resumed, against uninterrupted runs; and plug-ins that cannot run refused in one line
/// with exit code 2, nothing persisted.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class PluginExampleTests : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(3);
    private static readonly string Example = Path.Combine(RepositoryFiles.Root, "examples", "torchsharp-mlp");
    private static readonly string Spec = Path.Combine(Example, "sweep.conf");
    private static readonly string PluginAssembly = Path.Combine(Example, "bin", "plugin", "TorchSharpMlp.dll");
    private const string ModelType = "Sweep.Examples.TorchSharpMlp.MlpModel";
    private static readonly string Mnist = Path.Combine(RepositoryFiles.Root, "data", "mnist-10k");
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-plugin-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string DataDir => Path.Combine(temp, "data");

    /// <summary>A test point as the journal keeps it and as the model reports it.</summary>
    private sealed record Point(int Iteration, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy, double LearningRate);

    private static Point Of(TrialMetrics m) => new(m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate);

    private async Task<IReadOnlyList<ISweepEvent>> Events(string sweepId) => await SweepJournal.EventsAsync(new JournalSettings(DataDir), sweepId);

    /// <summary>
    /// The example's model trained alone in this process, one LibTorch thread (as each of a two-core
    /// machine's slots), with the same kernels, from the trial's parameters through a context of the
    /// test's own: the test points it reports.
    /// </summary>
    private static List<Point> Alone(TrialSpec spec)
    {
        TorchKernels.EnsureApplied();
        torch.set_num_threads(1);
        var type = Assembly.LoadFrom(PluginAssembly).GetType(ModelType, throwOnError: true)!;
        var model = (ITrialModel)Activator.CreateInstance(type)!;
        var context = new AloneContext(spec, Mnist);
        model.Train(context);
        var expected = Enumerable.Range(0, spec.MaxIter / spec.TestInterval + 1).Select(k => k * spec.TestInterval).Append(spec.MaxIter).Distinct();
        Assert.Equal(expected, context.Points.Select(p => p.Iteration));
        return context.Points;
    }

    [Fact]
    public async Task The_example_sweep_journals_for_every_trial_exactly_the_numbers_of_the_model_trained_alone_and_dropout_changes_them()
    {
        var (exit, stdout, stderr) = SweepProcess.Run("run", Spec, "--sweep-id", "mlp", "--data-dir", DataDir, "--workers", "2", "--threads", "1");

        Assert.True(exit == 0, $"{exit}\n{stdout}\n{stderr}");
        var events = await Events("mlp");
        var definition = ((SweepStarted)events[0]).Definition;
        Assert.Equal(Protocol.Specs.ModelKind.Plugin, definition.Model);
        Assert.Equal(new Protocol.Specs.PluginSpec(PluginAssembly, ModelType), definition.Plugin);
        Assert.Equal([(0.02, 0.0), (0.02, 0.5), (0.05, 0.0), (0.05, 0.5)],
            definition.Trials.Select(t => (t.Spec.BaseLr, t.Spec.Parameters!.Get("dropout")!.AsReal())).Order());
        var journaled = new Dictionary<(double, double), List<Point>>();
        foreach (var trial in definition.Trials)
        {
            var journal = events.OfType<TrialProgress>().Where(p => p.TrialId == trial.Id).Select(p => Of(p.Metrics)).ToList();
            Assert.Equal(Alone(trial.Spec), journal);
            Assert.Single(events.OfType<TrialCompleted>(), c => c.TrialId == trial.Id);
            Assert.All(events.OfType<TrialProgress>().Where(p => p.TrialId == trial.Id), p => Assert.True(p.Metrics.PeakMemoryBytes > 0, "peak memory is measured"));
            journaled[(trial.Spec.BaseLr, trial.Spec.Parameters!.Get("dropout")!.AsReal())] = journal;
        }
        // Dropout changes every number after the first update, and the test points at 0 are the same (no update yet).
        foreach (double lr in new[] { 0.02, 0.05 })
        {
            var (without, with) = (journaled[(lr, 0.0)], journaled[(lr, 0.5)]);
            Assert.Equal(without[0], with[0]);
            Assert.All(without.Zip(with).Skip(1), pair => Assert.NotEqual(pair.Item1.TrainLoss, pair.Item2.TrainLoss));
            Assert.All(without.Zip(with).Skip(1), pair => Assert.NotEqual(pair.Item1.TestLoss, pair.Item2.TestLoss));
        }
        // Every slot passed the self-test before it took a trial, as LeNet's do.
        var slots = events.OfType<SlotChecked>().ToList();
        Assert.Equal(2, slots.Count);
        Assert.All(slots, s => Assert.True(s.Health.Healthy && s.Health.Summary.StartsWith("self-test passed", StringComparison.Ordinal), s.Health.Summary));
    }

    [Fact]
    public async Task A_trial_whose_worker_process_is_killed_resumes_from_its_checkpoint_with_exactly_the_numbers_of_an_uninterrupted_run()
    {
        const int maxIter = 5000, testInterval = 100;
        int killedAt;
        using (var run = SweepProcess.Start("run", Spec, "--sweep-id", "killed", "--data-dir", DataDir, "--workers", "1", "--threads", "1",
                   "--set", "sweep.grid.base-lr=[0.05]", "--set", "sweep.grid.dropout=[0.5]",
                   "--set", $"sweep.max-iter={maxIter}", "--set", $"sweep.test-interval={testInterval}"))
        {
            run.WaitForLine(l => l.Contains($"b64-lr0.05: iter 500/{maxIter}", StringComparison.Ordinal), Long);
            var worker = Assert.Single(run.WorkerProcesses());
            // The plug-in trains in the worker process; the sweep process checked it without loading LibTorch.
            Assert.True(SweepProcess.MapsLibTorch(worker));
            Assert.False(SweepProcess.MapsLibTorch(run.Id));
            Assert.Equal(0, SweepProcess.Kill(worker, SweepProcess.SIGKILL));
            killedAt = (await Events("killed")).OfType<TrialCheckpointed>().Max(c => c.Iteration);
            Assert.Equal(0, run.WaitForExit(Long));
        }
        var events = await Events("killed");
        var trial = Assert.Single(((SweepStarted)events[0]).Definition.Trials);
        var resumed = events.OfType<TrialStarted>().Last();
        Assert.True(resumed.Attempt > 1, $"the trial ran again after its worker process was killed: attempt {resumed.Attempt}");
        Assert.InRange(resumed.FromIteration, killedAt, maxIter - 1);
        Assert.True(resumed.FromIteration >= 400, $"resumed from a checkpoint, not from scratch: {resumed.FromIteration}");
        var kept = events.OfType<TrialProgress>()
            .Where(p => p.Attempt == resumed.Attempt || p.Metrics.Iteration <= resumed.FromIteration)
            .Select(p => Of(p.Metrics));
        Assert.Equal(Alone(trial.Spec), kept);
        Assert.Single(events.OfType<TrialCompleted>());
    }

    [Fact]
    public async Task A_sweep_stopped_by_SIGTERM_and_resumed_gives_exactly_the_numbers_of_an_uninterrupted_run()
    {
        const int maxIter = 5000, testInterval = 100;
        using (var run = SweepProcess.Start("run", Spec, "--sweep-id", "stopped", "--data-dir", DataDir, "--workers", "1", "--threads", "1",
                   "--set", "sweep.grid.base-lr=[0.02]", "--set", "sweep.grid.dropout=[0.5]",
                   "--set", $"sweep.max-iter={maxIter}", "--set", $"sweep.test-interval={testInterval}"))
        {
            run.WaitForLine(l => l.Contains($"b64-lr0.02: iter 300/{maxIter}", StringComparison.Ordinal), Long);
            run.Signal(SweepProcess.SIGTERM);
            Assert.Equal(143, run.WaitForExit(Long));
        }
        var stoppedAt = (await Events("stopped")).OfType<TrialCheckpointed>().Max(c => c.Iteration);
        Assert.InRange(stoppedAt, 300, maxIter - 1);

        var (exit, stdout, stderr) = SweepProcess.Run("resume", "stopped", "--data-dir", DataDir, "--workers", "1", "--threads", "1");

        Assert.True(exit == 0, $"{exit}\n{stdout}\n{stderr}");
        var events = await Events("stopped");
        var trial = Assert.Single(((SweepStarted)events[0]).Definition.Trials);
        var resumed = events.OfType<TrialStarted>().Last();
        Assert.Equal(stoppedAt, resumed.FromIteration);
        var kept = events.OfType<TrialProgress>()
            .Where(p => p.Attempt == resumed.Attempt || p.Metrics.Iteration <= resumed.FromIteration)
            .Select(p => Of(p.Metrics));
        Assert.Equal(Alone(trial.Spec), kept);
        Assert.Single(events.OfType<TrialCompleted>());
        // The model's log lines are the trial's log.
        var logs = SweepProcess.Run("logs", "stopped", "--data-dir", DataDir, "--trial", "b64-lr0.02");
        Assert.Contains("training from scratch: hidden 128, dropout 0.5, on cpu", logs.Stdout);
        Assert.Contains($"resuming from iteration {stoppedAt}: hidden 128, dropout 0.5, on cpu", logs.Stdout);
    }

    [Theory]
    [InlineData("bin/plugin/Missing.dll", ModelType, "sweep.plugin.assembly: no such file: {example}/bin/plugin/Missing.dll (build the plug-in first, e.g. dotnet build)")]
    [InlineData("bin/plugin/TorchSharpMlp.dll", "Sweep.Examples.TorchSharpMlp.NoSuchModel", "sweep.plugin.type: TorchSharpMlp.dll has no type Sweep.Examples.TorchSharpMlp.NoSuchModel (types implementing Sweep.Training.ITrialModel in it: Sweep.Examples.TorchSharpMlp.MlpModel)")]
    [InlineData("bin/plugin/TorchSharpMlp.dll", "Sweep.Examples.TorchSharpMlp.Mlp", "sweep.plugin.type: Sweep.Examples.TorchSharpMlp.Mlp does not implement Sweep.Training.ITrialModel")]
    public void A_plugin_that_cannot_run_is_one_line_and_exit_2_with_nothing_persisted(string assembly, string type, string problem)
    {
        var spec = Path.Combine(Example, $"bad-{Guid.NewGuid():N}.conf");
        File.WriteAllText(spec, File.ReadAllText(Spec)
            .Replace("\"bin/plugin/TorchSharpMlp.dll\"", $"\"{assembly}\"", StringComparison.Ordinal)
            .Replace($"\"{ModelType}\"", $"\"{type}\"", StringComparison.Ordinal));
        try
        {
            var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "bad", "--data-dir", DataDir);

            Assert.Equal(2, exit);
            Assert.Equal($"sweep: {spec}: {problem.Replace("{example}", Example, StringComparison.Ordinal)}", stderr.Trim());
            Assert.DoesNotContain("   at ", stdout + stderr);
            Assert.False(Directory.Exists(DataDir), "nothing is persisted for a spec that is refused");
            var status = SweepProcess.Run("status", "--data-dir", DataDir);
            Assert.DoesNotContain("bad", status.Stdout);
        }
        finally
        {
            File.Delete(spec);
        }
    }

    /// <summary>A context of the test's own: the trial's parameters, one thread on the CPU, no checkpoints, and a list of what the model reports.</summary>
    private sealed class AloneContext(TrialSpec spec, string dataset) : ITrialContext
    {
        public List<Point> Points { get; } = [];
        public int BatchSize => spec.BatchSize;
        public int TestBatchSize => spec.TestBatchSize;
        public double BaseLr => spec.BaseLr;
        public int MaxIter => spec.MaxIter;
        public int TestInterval => spec.TestInterval;
        public int Seed => spec.Seed;
        public double Momentum => spec.Solver.Momentum;
        public double WeightDecay => spec.Solver.WeightDecay;
        public string LearningRatePolicy => spec.Solver.Policy.ToString().ToLowerInvariant();
        public double Gamma => spec.Solver.Gamma;
        public double Power => spec.Solver.Power;
        public int StepSize => spec.Solver.StepSize;
        public double LearningRateAt(int iteration) => spec.Solver.LearningRateAt(spec.BaseLr, iteration);
        public IReadOnlyList<string> ParameterNames => [.. spec.Parameters!.Items.Select(p => p.Name)];
        public long GetInteger(string name) => spec.Parameters!.Get(name)!.AsInteger();
        public double GetReal(string name) => spec.Parameters!.Get(name)!.AsReal();
        public string GetString(string name) => spec.Parameters!.Get(name)!.Text;
        public bool GetBoolean(string name) => spec.Parameters!.Get(name)!.AsBoolean();
        public string Device => "cpu";
        public int Threads => 1;
        public string DatasetPath => dataset;
        public int? TrainCount => spec.Dataset.TrainCount;
        public int? TestCount => spec.Dataset.TestCount;
        public string? CheckpointDirectory => null;
        public string? CheckpointPath(int iteration) => null;
        public string? ResumePath => null;
        public int? ResumeIteration => null;
        public CancellationToken Cancellation => CancellationToken.None;

        public void Report(int iteration, double testAccuracy, double testLoss, double trainLoss, double trainAccuracy = double.NaN, double learningRate = double.NaN, double seconds = double.NaN) =>
            Points.Add(new Point(iteration, trainLoss, trainAccuracy, testLoss, testAccuracy, learningRate));

        public void Checkpointed(int iteration) => throw new InvalidOperationException("no checkpoints when trained alone");

        public void Log(string message)
        {
        }
    }
}
