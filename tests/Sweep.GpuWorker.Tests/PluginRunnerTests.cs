using Sweep.GpuWorker.Runners;
using Sweep.GpuWorker.Training;
using Sweep.GpuWorker.Workers;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;
using Sweep.Training;

namespace Sweep.GpuWorker.Tests;

/// <summary>
/// What <see cref="PluginRunner"/> makes of what a plug-in model does through its context: test
/// points, divergence, a fault before learning, named parameters, checkpoints, a checkpoint it cannot
/// read, out of memory. The models are small plug-ins written here; they report the numbers they are
/// given, so every expectation is exact.
/// </summary>
public sealed class PluginRunnerTests : IDisposable
{
    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    private RunTrial Trial(TrialParameters? parameters = null, int maxIter = 30, string? resumeFrom = null, int attempt = 1) =>
        new("sweep", new TrialDefinition("id-t1", "t1", new TrialSpec(32, 64, 0.01, maxIter, 10, 1, new SolverSpec(), new DatasetSpec(temp.Path), parameters)),
            attempt, ModelKind.Plugin, new SyntheticSpec(), new DivergencePolicy(), temp.File("t1.ckpt"), resumeFrom);

    private TrainingOptions Options(RunTrial trial) => InThreadSlot.TrainingOptionsOf(new WorkerSlot("w1", "node", "cpu", 1), trial);

    /// <summary>A model that reports, at each test point, the training loss <c>losses(iteration)</c> and checkpoints between them; it stops when cancelled.</summary>
    private sealed class Scripted(Func<int, double> losses, Action<ITrialContext>? before = null) : ITrialModel
    {
        public List<int> Checkpoints { get; } = [];

        public bool SawCancellation { get; private set; }

        public void Train(ITrialContext context)
        {
            before?.Invoke(context);
            int start = context.ResumeIteration ?? 0;
            if (context.ResumeIteration is null) context.Report(0, 0.1, 2.3, losses(0));
            for (int iteration = start + 1; iteration <= context.MaxIter; iteration++)
            {
                if (context.Cancellation.IsCancellationRequested)
                {
                    SawCancellation = true;
                    Save(context, iteration - 1);
                    return;
                }
                if (iteration % context.TestInterval == 0 || iteration == context.MaxIter)
                {
                    context.Report(iteration, 0.5 + iteration / 100.0, 1.0 / iteration, losses(iteration), 0.5, context.LearningRateAt(iteration));
                    if (iteration < context.MaxIter) Save(context, iteration);
                }
            }
        }

        private void Save(ITrialContext context, int iteration)
        {
            File.WriteAllText(context.CheckpointPath(iteration)!, iteration.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Checkpoints.Add(iteration);
            context.Checkpointed(iteration);
        }
    }

    private sealed class Observer : ITrainingObserver
    {
        public List<TrialMetrics> Metrics { get; } = [];
        public List<(int Iteration, string Path)> Checkpoints { get; } = [];
        public void OnMetrics(TrialMetrics metrics) => Metrics.Add(metrics);
        public void OnCheckpoint(int iteration, string path) => Checkpoints.Add((iteration, path));
    }

    [Fact]
    public void Test_points_and_checkpoints_reach_the_observer_with_the_trials_versioned_files_and_the_run_completes()
    {
        var trial = Trial();
        var model = new Scripted(i => 2.0 - i / 100.0);
        var observer = new Observer();

        var result = new PluginRunner(_ => model).Run(trial, Options(trial), observer, CancellationToken.None);

        Assert.Equal((TrialOutcome.Completed, 30), (result.Outcome, result.Iteration));
        Assert.Equal([(0, 2.0, 0.1, 2.3), (10, 1.9, 0.6, 0.1), (20, 1.8, 0.7, 0.05), (30, 1.7, 0.8, 1.0 / 30)],
            observer.Metrics.Select(m => (m.Iteration, m.TrainLoss, m.TestAccuracy, m.TestLoss)));
        Assert.Equal(observer.Metrics, result.Metrics);
        Assert.Equal([(10, CheckpointFiles.Versioned(temp.File("t1.ckpt"), 10)), (20, CheckpointFiles.Versioned(temp.File("t1.ckpt"), 20))], observer.Checkpoints);
        Assert.All(observer.Metrics, m => Assert.True(m.PeakMemoryBytes > 1 << 20, $"peak memory {m.PeakMemoryBytes}"));
    }

    [Fact]
    public void A_nan_training_loss_is_a_divergence_at_its_iteration_the_point_is_not_recorded_and_the_model_is_told_to_stop()
    {
        var trial = Trial(maxIter: 100);
        var model = new Scripted(i => i >= 20 ? double.NaN : 2.0);
        var observer = new Observer();

        var result = new PluginRunner(_ => model).Run(trial, Options(trial), observer, CancellationToken.None);

        Assert.Equal(TrialOutcome.Diverged, result.Outcome);
        Assert.Equal(new DivergenceDetected(20, double.NaN, "loss is NaN"), result.Divergence);
        Assert.Equal([0, 10], observer.Metrics.Select(m => m.Iteration));
        Assert.True(model.SawCancellation);
    }

    [Fact]
    public void A_nan_loss_under_the_initial_weights_fails_the_attempt_as_a_fault_not_a_divergence()
    {
        var trial = Trial();
        var observer = new Observer();

        var ended = AttemptRun.Run(new PluginRunner(_ => new Scripted(_ => double.NaN)), trial, Options(trial), _ => { }, CancellationToken.None);

        Assert.Equal((TrialEndKind.Failed, 0), (ended.Kind, ended.Iteration));
        Assert.Equal("training loss is NaN under the initial weights (iteration 0, before any update): a fault of the device or the data, not a divergence", ended.Reason);
    }

    [Fact]
    public void Named_parameters_are_typed_and_a_missing_or_mistyped_one_is_an_error_naming_it()
    {
        var parameters = new TrialParameters([new("dropout", ParameterValue.Real(0.25)), new("hidden", ParameterValue.Integer(64)), new("optimizer", ParameterValue.String("sgd")), new("norm", ParameterValue.Boolean(true))]);
        var trial = Trial(parameters);
        (double, double, long, string, bool, IReadOnlyList<string>)? seen = null;
        var model = new Scripted(_ => 2.0, context => seen = (context.GetReal("dropout"), context.GetReal("hidden"), context.GetInteger("hidden"), context.GetString("optimizer"), context.GetBoolean("norm"), context.ParameterNames));

        new PluginRunner(_ => model).Run(trial, Options(trial), new Observer(), CancellationToken.None);

        Assert.Equal((0.25, 64.0, 64L, "sgd", true), (seen!.Value.Item1, seen.Value.Item2, seen.Value.Item3, seen.Value.Item4, seen.Value.Item5));
        Assert.Equal(["dropout", "hidden", "norm", "optimizer"], seen.Value.Item6);
        string Error(Action<ITrialContext> use) =>
            AttemptRun.Run(new PluginRunner(_ => new Scripted(_ => 2.0, use)), trial, Options(trial), _ => { }, CancellationToken.None).Reason!;
        Assert.Equal("TrialParameterException: trial t1 has no parameter 'width' (it has: dropout, hidden, norm, optimizer); give it in the sweep's grid, cases or parameters", Error(c => c.GetInteger("width")));
        Assert.Equal("TrialParameterException: parameter 'dropout' of trial t1 is the real 0.25, not an integer", Error(c => c.GetInteger("dropout")));
        Assert.Equal("TrialParameterException: parameter 'optimizer' of trial t1 is the string \"sgd\", not a real", Error(c => c.GetReal("optimizer")));
    }

    [Fact]
    public void Stopped_mid_run_the_model_checkpoints_and_the_attempt_is_stopped_there_then_resumes_from_that_file()
    {
        var trial = Trial(maxIter: 1000);
        using var stop = new CancellationTokenSource();
        var observer = new Observer();
        var model = new Scripted(i =>
        {
            if (i == 20) stop.Cancel();
            return 2.0;
        });

        var result = new PluginRunner(_ => model).Run(trial, Options(trial), observer, stop.Token);

        Assert.Equal(TrialOutcome.Cancelled, result.Outcome);
        Assert.Equal(CheckpointFiles.Versioned(temp.File("t1.ckpt"), result.Iteration), result.CheckpointPath);
        Assert.InRange(result.Iteration, 20, 21);

        int? resumedAt = null;
        string? resumedFrom = null;
        var resumed = new Scripted(_ => 1.0, context => (resumedAt, resumedFrom) = (context.ResumeIteration, context.ResumePath));
        var again = trial with { Attempt = 2, ResumeFrom = result.CheckpointPath };
        var end = new PluginRunner(_ => resumed).Run(again, Options(again), new Observer(), CancellationToken.None);
        Assert.Equal((result.Iteration, result.CheckpointPath), (resumedAt, resumedFrom));
        Assert.Equal((TrialOutcome.Completed, 1000), (end.Outcome, end.Iteration));
    }

    [Fact]
    public void A_checkpoint_the_model_cannot_read_is_reported_and_the_same_attempt_runs_from_scratch()
    {
        var journalled = CheckpointFiles.Versioned(temp.File("t1.ckpt"), 10);
        File.WriteAllText(journalled, "damaged");
        var trial = Trial(resumeFrom: journalled, attempt: 2);
        var reports = new List<ISweepMessage>();
        int runs = 0;
        var runner = new PluginRunner(_ => new Scripted(_ => 2.0, context =>
        {
            runs++;
            if (context.ResumePath is { } path) throw new Sweep.Training.CheckpointUnreadableException($"{Path.GetFileName(path)} is damaged");
        }));

        var ended = AttemptRun.Run(runner, trial, Options(trial), reports.Add, CancellationToken.None);

        Assert.Equal((TrialEndKind.Completed, 30), (ended.Kind, ended.Iteration));
        Assert.Equal(2, runs);
        var missing = Assert.Single(reports.OfType<TrialCheckpointMissing>());
        Assert.Equal((journalled, "t1.it000000010.ckpt is damaged"), (missing.Path, missing.Reason));
        Assert.Equal([0, 10, 20, 30], reports.OfType<TestPointReported>().Select(p => p.Metrics.Iteration));
    }

    [Fact]
    public void Out_of_memory_from_the_model_is_the_sweeps_out_of_memory_end()
    {
        var trial = Trial();

        var ended = AttemptRun.Run(new PluginRunner(_ => new Scripted(_ => 2.0, _ => throw new OutOfMemoryException("no more"))), trial, Options(trial), _ => { }, CancellationToken.None);

        Assert.Equal(TrialEndKind.OutOfMemory, ended.Kind);
        Assert.Equal("out of memory at batch 32: no more", ended.Reason);
    }
}
