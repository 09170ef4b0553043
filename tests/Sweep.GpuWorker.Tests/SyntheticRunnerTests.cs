using System.Diagnostics;
using Sweep.GpuWorker.Runners;
using Sweep.GpuWorker.Synthetic;
using Sweep.GpuWorker.Training;
using Sweep.Protocol;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Tests;

/// <summary>The synthetic model: the trainer's contract without training, fast.</summary>
public sealed class SyntheticRunnerTests : IDisposable
{
    private readonly TempDirectory temp = new();
    private readonly SyntheticRunner runner = new();

    public void Dispose() => temp.Dispose();

    private static TrialSpec Case(int batch = 64, double lr = 0.01, int maxIter = 100, int testInterval = 20, int seed = 1) =>
        new(batch, 2 * batch, lr, maxIter, testInterval, seed, new SolverSpec(), new DatasetSpec("unused"));

    private static RunTrial Trial(TrialSpec spec, int attempt = 1, SyntheticSpec? synthetic = null, string name = "trial-a") =>
        new("sweep-1", new TrialDefinition("id-" + name, name, spec), attempt, ModelKind.Synthetic,
            synthetic ?? new SyntheticSpec(IterationMs: 0), new DivergencePolicy(), "unused.ckpt", null);

    /// <summary>Thread count and device are ignored by the synthetic model; these are deliberately odd.</summary>
    private static TrainingOptions Options(string? checkpoint = null, string? resume = null, bool checkpointOnCancel = false) =>
        new(Threads: 0, Device: "tpu", checkpoint, resume, checkpointOnCancel);

    private TrainingResult Run(RunTrial trial, TrainingOptions? options = null, Recorder? observer = null, CancellationToken cancellation = default) =>
        runner.Run(trial, options ?? Options(), observer ?? new Recorder(), cancellation);

    /// <summary>What a run computed, without its wall-clock time.</summary>
    private static IEnumerable<(int, double, double, double, double, double, long)> Computed(IEnumerable<TrialMetrics> metrics) =>
        metrics.Select(m => (m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate, m.PeakMemoryBytes));

    private static SyntheticSpec WithFault(FaultKind kind, int at, params int[] attempts) =>
        new(IterationMs: 0, Faults: [new SyntheticFault("trial-a", at, kind, attempts)]);

    [Fact]
    public void Reports_at_iteration_0_every_test_interval_and_the_end_like_the_trainer()
    {
        var spec = Case(maxIter: 250, testInterval: 100);
        var observer = new Recorder();

        var result = Run(Trial(spec), observer: observer);

        Assert.Equal(TrialOutcome.Completed, result.Outcome);
        Assert.Equal(250, result.Iteration);
        Assert.Null(result.Divergence);
        Assert.Equal(new[] { 0, 100, 200, 250 }, result.Metrics.Select(m => m.Iteration));
        Assert.Equal(result.Metrics, observer.Metrics);
        Assert.All(result.Metrics, m => Assert.Equal(spec.Solver.LearningRateAt(spec.BaseLr, m.Iteration), m.LearningRate));
        // A plausible curve: chance and ln 10 at first, most of the way to the plateau by the end.
        Assert.InRange(result.Metrics[0].TestAccuracy, 0.08, 0.12);
        Assert.InRange(result.Metrics[0].TestLoss, 2.2, 2.4);
        Assert.InRange(result.Metrics[^1].TestAccuracy, 0.9, 0.98);
        Assert.True(result.Metrics[^1].TrainLoss < result.Metrics[1].TrainLoss);
        Assert.All(result.Metrics, m => Assert.InRange(m.TrainAccuracy, 0, 1));
        Assert.All(result.Metrics, m => Assert.True(m.Seconds >= 0));
        Assert.Empty(observer.Checkpoints);
    }

    [Fact]
    public void The_modelled_peak_memory_grows_with_the_batch()
    {
        long Memory(int batch) => Run(Trial(Case(batch: batch, maxIter: 1))).Metrics[0].PeakMemoryBytes;

        Assert.Equal(40L * 1024 * 1024 + 64 * 512 * 1024, Memory(64));
        Assert.Equal(Memory(128) - Memory(64), Memory(192) - Memory(128));
        Assert.True(Memory(128) > Memory(64));
    }

    [Fact]
    public void The_same_spec_gives_identical_metrics_and_another_seed_does_not()
    {
        var first = Run(Trial(Case()));
        var second = Run(Trial(Case()));
        var otherSeed = Run(Trial(Case(seed: 2)));

        Assert.Equal(Computed(first.Metrics), Computed(second.Metrics));
        Assert.NotEqual(Computed(first.Metrics), Computed(otherSeed.Metrics));
    }

    [Fact]
    public void A_larger_learning_rate_or_batch_learns_faster()
    {
        double AccuracyAt100(int batch, double lr) => Run(Trial(Case(batch, lr, maxIter: 100, testInterval: 100))).Metrics[^1].TestAccuracy;

        Assert.True(AccuracyAt100(64, 0.05) > AccuracyAt100(64, 0.01) + 0.02);
        Assert.True(AccuracyAt100(256, 0.01) > AccuracyAt100(64, 0.01) + 0.02);
        Assert.True(AccuracyAt100(64, 0.01) > AccuracyAt100(64, 0.001) + 0.1);
    }

    [Fact]
    public void A_learning_rate_at_or_above_the_divergent_one_makes_the_loss_nan_at_iteration_20()
    {
        var result = Run(Trial(Case(lr: 0.08, maxIter: 100, testInterval: 10)));

        Assert.Equal(TrialOutcome.Diverged, result.Outcome);
        Assert.Equal(20, result.Iteration);
        Assert.Equal(20, result.Divergence!.Iteration);
        Assert.True(double.IsNaN(result.Divergence.Loss));
        Assert.Equal("loss is NaN", result.Divergence.Reason);
        // As with the trainer: the test point at 20 (after 20 good steps) is reported, the step at 20 is where
        // the loss turns NaN, and nothing of it is reported.
        Assert.Equal(new[] { 0, 10, 20 }, result.Metrics.Select(m => m.Iteration));
        Assert.All(result.Metrics, m => Assert.True(double.IsFinite(m.TrainLoss) && double.IsFinite(m.TestLoss)));
    }

    [Fact]
    public void A_short_divergent_trial_diverges_at_its_last_step()
    {
        var result = Run(Trial(Case(lr: 0.5, maxIter: 8, testInterval: 4)));

        Assert.Equal(TrialOutcome.Diverged, result.Outcome);
        Assert.Equal(7, result.Divergence!.Iteration);
        Assert.Equal(new[] { 0, 4 }, result.Metrics.Select(m => m.Iteration));
    }

    [Fact]
    public void An_injected_exception_strikes_only_in_the_listed_attempts()
    {
        var synthetic = WithFault(FaultKind.Exception, 30, 1, 3);
        var observer = new Recorder();

        var error = Assert.Throws<InvalidOperationException>(() => Run(Trial(Case(), attempt: 1, synthetic), observer: observer));

        Assert.Equal("injected fault: exception at iteration 30", error.Message);
        Assert.Equal(new[] { 0, 20 }, observer.Metrics.Select(m => m.Iteration));
        Assert.Throws<InvalidOperationException>(() => Run(Trial(Case(), attempt: 3, synthetic)));
        Assert.Equal(TrialOutcome.Completed, Run(Trial(Case(), attempt: 2, synthetic)).Outcome);
    }

    [Fact]
    public void An_injected_out_of_memory_names_the_iteration_and_batch()
    {
        var synthetic = WithFault(FaultKind.OutOfMemory, 0, 1);
        var observer = new Recorder();

        var error = Assert.Throws<TrialOutOfMemoryException>(() => Run(Trial(Case(batch: 512), attempt: 1, synthetic), observer: observer));

        Assert.Equal("injected fault: out of memory at iteration 0 (batch 512)", error.Message);
        // Iteration 0 strikes before the first step, after the iteration-0 report.
        Assert.Equal(new[] { 0 }, observer.Metrics.Select(m => m.Iteration));
        Assert.Equal(TrialOutcome.Completed, Run(Trial(Case(batch: 512), attempt: 2, synthetic)).Outcome);
    }

    [Fact]
    public void An_injected_nan_is_a_divergence_at_its_iteration()
    {
        var synthetic = WithFault(FaultKind.Nan, 45, 1);

        var result = Run(Trial(Case(), attempt: 1, synthetic));

        Assert.Equal(TrialOutcome.Diverged, result.Outcome);
        Assert.Equal(45, result.Iteration);
        Assert.Equal(new DivergenceDetected(45, double.NaN, "loss is NaN"), result.Divergence);
        Assert.Equal(new[] { 0, 20, 40 }, result.Metrics.Select(m => m.Iteration));
        Assert.Equal(TrialOutcome.Completed, Run(Trial(Case(), attempt: 2, synthetic)).Outcome);
    }

    [Fact]
    public void A_fault_for_another_trial_does_not_strike()
    {
        var synthetic = new SyntheticSpec(IterationMs: 0, Faults: [new SyntheticFault("trial-b", 10, FaultKind.Exception, [1])]);

        Assert.Equal(TrialOutcome.Completed, Run(Trial(Case(), attempt: 1, synthetic, name: "trial-a")).Outcome);
        Assert.Throws<InvalidOperationException>(() => Run(Trial(Case(), attempt: 1, synthetic, name: "trial-b")));
    }

    [Fact]
    public void A_trial_restored_from_a_checkpoint_ends_with_the_metrics_of_an_uninterrupted_run()
    {
        var spec = Case(maxIter: 120, testInterval: 40);
        var checkpoint = temp.File("trial.ckpt");
        var atFortyCopy = temp.File("at-40.ckpt");
        var observer = new Recorder { OnCheckpointed = (iteration, path) => { if (iteration == 40) File.Copy(path, atFortyCopy); } };

        var uninterrupted = Run(Trial(spec), Options(checkpoint), observer);
        var restored = Run(Trial(spec), Options(resume: atFortyCopy));

        Assert.Equal(new[] { 40, 80 }, observer.Checkpoints);
        Assert.True(File.Exists(checkpoint));
        Assert.False(File.Exists(checkpoint + ".partial"));
        Assert.Equal(TrialOutcome.Completed, restored.Outcome);
        Assert.Equal(new[] { 80, 120 }, restored.Metrics.Select(m => m.Iteration));
        Assert.Equal(Computed(uninterrupted.Metrics.Where(m => m.Iteration > 40)), Computed(restored.Metrics));
    }

    [Fact]
    public void Cancellation_at_a_test_point_stops_there_and_its_checkpoint_resumes_exactly()
    {
        var spec = Case(maxIter: 100, testInterval: 50);
        using var cancel = new CancellationTokenSource();
        // Ask to stop once iteration 50 has been reported: the next step must not run.
        var observer = new Recorder { OnReported = m => { if (m.Iteration == 50) cancel.Cancel(); } };
        var checkpoint = temp.File("cancelled.ckpt");

        var cancelled = Run(Trial(spec), Options(checkpoint, checkpointOnCancel: true), observer, cancel.Token);
        var resumed = Run(Trial(spec), Options(resume: checkpoint));
        var uninterrupted = Run(Trial(spec));

        Assert.Equal(TrialOutcome.Cancelled, cancelled.Outcome);
        Assert.Equal(50, cancelled.Iteration);
        Assert.Equal(checkpoint, cancelled.CheckpointPath);
        Assert.Equal(new[] { 0, 50 }, cancelled.Metrics.Select(m => m.Iteration));
        Assert.Equal(Computed(uninterrupted.Metrics.Where(m => m.Iteration > 50)), Computed(resumed.Metrics));
    }

    [Fact]
    public void A_checkpoint_taken_between_test_points_on_cancel_resumes_exactly()
    {
        // 5 ms per iteration: a cancel 100 ms after iteration 0 lands well inside the single interval.
        var spec = Case(maxIter: 200, testInterval: 200);
        var trial = Trial(spec, synthetic: new SyntheticSpec(IterationMs: 5));
        using var cancel = new CancellationTokenSource();
        var observer = new Recorder { OnReported = m => { if (m.Iteration == 0) cancel.CancelAfter(TimeSpan.FromMilliseconds(100)); } };
        var checkpoint = temp.File("mid-interval.ckpt");

        var cancelled = Run(trial, Options(checkpoint, checkpointOnCancel: true), observer, cancel.Token);
        var resumed = Run(Trial(spec), Options(resume: checkpoint));
        var uninterrupted = Run(Trial(spec));

        Assert.Equal(TrialOutcome.Cancelled, cancelled.Outcome);
        Assert.InRange(cancelled.Iteration, 1, 199);
        Assert.Equal(new[] { cancelled.Iteration }, observer.Checkpoints);
        Assert.Equal(Computed(uninterrupted.Metrics.Where(m => m.Iteration == 200)), Computed(resumed.Metrics));
    }

    [Fact]
    public void Cancellation_without_checkpoint_on_cancel_writes_nothing()
    {
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        var checkpoint = temp.File("never.ckpt");

        var result = Run(Trial(Case()), Options(checkpoint), cancellation: cancel.Token);

        Assert.Equal(TrialOutcome.Cancelled, result.Outcome);
        Assert.Equal(0, result.Iteration);
        Assert.Null(result.CheckpointPath);
        Assert.False(File.Exists(checkpoint));
    }

    [Fact]
    public void A_checkpoint_of_another_trial_is_refused_by_name()
    {
        var checkpoint = temp.File("other.ckpt");
        Run(Trial(Case(batch: 64)), Options(checkpoint));

        var error = Assert.Throws<CheckpointUnreadableException>(() => Run(Trial(Case(batch: 32)), Options(resume: checkpoint)));

        Assert.Contains(checkpoint, error.Message);
        Assert.Contains("another trial", error.Message);
    }

    [Fact]
    public void A_damaged_or_missing_checkpoint_is_refused_by_name()
    {
        var checkpoint = temp.File("damaged.ckpt");
        Run(Trial(Case()), Options(checkpoint));
        var text = File.ReadAllText(checkpoint);
        File.WriteAllText(checkpoint, text[..(text.Length / 2)]);
        var missing = temp.File("missing.ckpt");

        var damaged = Assert.Throws<CheckpointUnreadableException>(() => Run(Trial(Case()), Options(resume: checkpoint)));
        var notFound = Assert.Throws<InvalidInputException>(() => Run(Trial(Case()), Options(resume: missing)));

        Assert.Equal(checkpoint, damaged.Path);
        Assert.StartsWith("damaged checkpoint (JsonException: ", damaged.Cause);
        Assert.Equal($"{checkpoint}: {damaged.Cause}", damaged.Message);
        Assert.Contains(missing, notFound.Message);
        Assert.Contains("not found", notFound.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{}")]
    [InlineData("{\"format\":\"sweep-synthetic-checkpoint/9\",\"fingerprint\":\"f\",\"iteration\":40,\"interval\":{\"lossSum\":0,\"correct\":0,\"seen\":0,\"steps\":0,\"seconds\":0}}")]
    public void An_empty_incomplete_or_foreign_format_file_is_unreadable_not_another_trials(string content)
    {
        var checkpoint = temp.File("odd.ckpt");
        File.WriteAllText(checkpoint, content);

        var error = Assert.Throws<CheckpointUnreadableException>(() => Run(Trial(Case()), Options(resume: checkpoint)));

        Assert.Equal(checkpoint, error.Path);
    }

    [Fact]
    public void Versioned_checkpoints_go_to_one_file_per_iteration_and_each_resumes_exactly()
    {
        var spec = Case(maxIter: 120, testInterval: 40);
        var basePath = temp.File("trial.ckpt");
        var observer = new Recorder();

        var uninterrupted = Run(Trial(spec), Options(basePath) with { VersionedCheckpoints = true }, observer);
        var fromForty = Run(Trial(spec), Options(resume: temp.File("trial.it000000040.ckpt")));
        var fromEighty = Run(Trial(spec), Options(resume: temp.File("trial.it000000080.ckpt")));

        Assert.Equal(new[] { (40, temp.File("trial.it000000040.ckpt")), (80, temp.File("trial.it000000080.ckpt")) }, observer.Saved);
        Assert.Equal(new[] { "trial.it000000040.ckpt", "trial.it000000080.ckpt" }, Directory.GetFiles(temp.Path).Select(Path.GetFileName).Order());
        Assert.Equal(Computed(uninterrupted.Metrics.Where(m => m.Iteration > 40)), Computed(fromForty.Metrics));
        Assert.Equal(Computed(uninterrupted.Metrics.Where(m => m.Iteration > 80)), Computed(fromEighty.Metrics));
    }

    [Fact]
    public void A_versioned_checkpoint_on_cancel_is_named_by_the_iteration_it_stopped_at()
    {
        var spec = Case(maxIter: 100, testInterval: 50);
        using var cancel = new CancellationTokenSource();
        var observer = new Recorder { OnReported = m => { if (m.Iteration == 50) cancel.Cancel(); } };

        var cancelled = Run(Trial(spec), Options(temp.File("trial.ckpt"), checkpointOnCancel: true) with { VersionedCheckpoints = true }, observer, cancel.Token);

        Assert.Equal((TrialOutcome.Cancelled, 50), (cancelled.Outcome, cancelled.Iteration));
        Assert.Equal(temp.File("trial.it000000050.ckpt"), cancelled.CheckpointPath);
        Assert.False(File.Exists(temp.File("trial.ckpt")));
    }

    [Fact]
    public void An_invalid_spec_is_refused_with_its_first_problem()
    {
        var error = Assert.Throws<InvalidInputException>(() => Run(Trial(Case(batch: 0))));

        Assert.Contains("batch-size", error.Message);
    }

    [Fact]
    public void Each_iteration_sleeps_its_share_of_the_total()
    {
        var clock = Stopwatch.StartNew();
        var result = Run(Trial(Case(maxIter: 200, testInterval: 50), synthetic: new SyntheticSpec(IterationMs: 5)));
        clock.Stop();

        Assert.Equal(TrialOutcome.Completed, result.Outcome);
        // Only a lower bound: machines are noisy, so how much longer it takes is not asserted.
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), $"200 × 5 ms took {clock.Elapsed}");
        Assert.True(result.Metrics.Sum(m => m.Seconds) >= 0.99, $"the intervals measured {result.Metrics.Sum(m => m.Seconds)} s");
    }

    [Fact]
    public void Sub_millisecond_iterations_add_up()
    {
        var clock = Stopwatch.StartNew();
        Run(Trial(Case(maxIter: 1000, testInterval: 500), synthetic: new SyntheticSpec(IterationMs: 0.3)));

        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.29), $"1,000 × 0.3 ms took {clock.Elapsed}");
    }

    private sealed class Recorder : ITrainingObserver
    {
        public Action<TrialMetrics>? OnReported { get; init; }
        public Action<int, string>? OnCheckpointed { get; init; }
        public List<TrialMetrics> Metrics { get; } = [];
        public List<int> Checkpoints { get; } = [];
        public List<(int, string)> Saved { get; } = [];

        public void OnMetrics(TrialMetrics metrics)
        {
            Metrics.Add(metrics);
            OnReported?.Invoke(metrics);
        }

        public void OnCheckpoint(int iteration, string path)
        {
            Checkpoints.Add(iteration);
            Saved.Add((iteration, path));
            OnCheckpointed?.Invoke(iteration, path);
        }
    }
}
