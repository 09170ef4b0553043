using Sweep.GpuWorker.Data;
using Sweep.GpuWorker.Training;
using Sweep.Protocol;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Tests;

/// <summary>Real training on the embedded MNIST subset.</summary>
[Collection(TorchCollection.Name)]
public sealed class TrainerTests : IDisposable
{
    private static readonly Lazy<MnistData> Embedded = new(() => MnistData.Load(new DatasetSpec(MnistData.EmbeddedPath)));
    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    private static TrialSpec Case(int batch, double lr, int maxIter, int testInterval = 100, int seed = 1) =>
        new(batch, 2 * batch, lr, maxIter, testInterval, seed, new SolverSpec(), new DatasetSpec(MnistData.EmbeddedPath));

    private static TrainingOptions Options(string? checkpoint = null, string? resume = null, bool checkpointOnCancel = false) =>
        new(TorchCollection.Threads, "cpu", checkpoint, resume, checkpointOnCancel);

    /// <summary>What a run computed, without its wall-clock time and memory.</summary>
    private static IEnumerable<(int, double, double, double, double, double)> Computed(IEnumerable<TrialMetrics> metrics) =>
        metrics.Select(m => (m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate));

    [Fact]
    public void Batch_64_lr_001_reaches_90_percent_test_accuracy_within_300_iterations()
    {
        var result = Trainer.Run(Case(64, 0.01, 300), Embedded.Value, Options());

        Assert.Equal(TrialOutcome.Completed, result.Outcome);
        Assert.Equal(new[] { 0, 100, 200, 300 }, result.Metrics.Select(m => m.Iteration));
        Assert.True(result.Metrics[^1].TestAccuracy >= 0.9, $"test accuracy {result.Metrics[^1].TestAccuracy} at 300");
        // At iteration 0 the network guesses: accuracy near chance, loss near ln 10.
        Assert.InRange(result.Metrics[0].TestAccuracy, 0.0, 0.25);
        Assert.InRange(result.Metrics[0].TestLoss, 2.0, 2.7);
        Assert.True(result.Metrics[^1].TrainLoss < result.Metrics[1].TrainLoss);
        Assert.Equal(new SolverSpec().LearningRateAt(0.01, 300), result.Metrics[^1].LearningRate, 12);
        Assert.All(result.Metrics, m => Assert.True(m.PeakMemoryBytes > 50_000_000, $"peak memory {m.PeakMemoryBytes}"));
        Assert.All(result.Metrics.Skip(1), m => Assert.True(m.Seconds > 0));
    }

    [Fact]
    public void The_papers_case8_learning_rate_diverges_and_says_where()
    {
        var result = Trainer.Run(Case(64, 0.1, 1000), Embedded.Value, Options());

        Assert.Equal(TrialOutcome.Diverged, result.Outcome);
        Assert.NotNull(result.Divergence);
        Assert.Equal(result.Iteration, result.Divergence!.Iteration);
        Assert.InRange(result.Divergence.Iteration, 1, 999);
        Assert.False(double.IsFinite(result.Divergence.Loss));
        Assert.Contains("loss is", result.Divergence.Reason);
        Assert.All(result.Metrics, m => Assert.True(m.Iteration <= result.Divergence.Iteration));
    }

    [Fact]
    public void The_same_seed_and_threads_give_identical_metrics_and_another_seed_does_not()
    {
        var first = Trainer.Run(Case(32, 0.01, 60, testInterval: 20), Embedded.Value, Options());
        var second = Trainer.Run(Case(32, 0.01, 60, testInterval: 20), Embedded.Value, Options());
        var otherSeed = Trainer.Run(Case(32, 0.01, 60, testInterval: 20, seed: 2), Embedded.Value, Options());

        Assert.Equal(Computed(first.Metrics), Computed(second.Metrics));
        Assert.NotEqual(Computed(first.Metrics), Computed(otherSeed.Metrics));
    }

    [Fact]
    public void A_trial_restored_from_a_checkpoint_ends_with_the_metrics_of_an_uninterrupted_run()
    {
        var spec = Case(64, 0.01, 120, testInterval: 40);
        var checkpoint = temp.File("trial.ckpt");
        var atFortyCopy = temp.File("at-40.ckpt");
        var observer = new Recorder { OnCheckpointed = (iteration, path) => { if (iteration == 40) File.Copy(path, atFortyCopy); } };

        var uninterrupted = Trainer.Run(spec, Embedded.Value, Options(checkpoint), observer);
        var restored = Trainer.Run(spec, Embedded.Value, Options(resume: atFortyCopy));

        Assert.Equal(new[] { 40, 80 }, observer.Checkpoints);
        Assert.Equal(TrialOutcome.Completed, restored.Outcome);
        Assert.Equal(new[] { 80, 120 }, restored.Metrics.Select(m => m.Iteration));
        Assert.Equal(Computed(uninterrupted.Metrics.Where(m => m.Iteration > 40)), Computed(restored.Metrics));
    }

    [Fact]
    public void Cancellation_stops_within_one_iteration_and_a_checkpoint_there_resumes_exactly()
    {
        var spec = Case(64, 0.01, 100, testInterval: 50);
        using var cancel = new CancellationTokenSource();
        // Ask to stop once iteration 50 has been reported: the next step must not run.
        var observer = new Recorder { OnReported = m => { if (m.Iteration == 50) cancel.Cancel(); } };
        var checkpoint = temp.File("cancelled.ckpt");

        var cancelled = Trainer.Run(spec, Embedded.Value, Options(checkpoint, checkpointOnCancel: true), observer, cancel.Token);
        var resumed = Trainer.Run(spec, Embedded.Value, Options(resume: checkpoint));
        var uninterrupted = Trainer.Run(spec, Embedded.Value, Options());

        Assert.Equal(TrialOutcome.Cancelled, cancelled.Outcome);
        Assert.Equal(50, cancelled.Iteration);
        Assert.Equal(checkpoint, cancelled.CheckpointPath);
        Assert.Equal(Computed(uninterrupted.Metrics.Where(m => m.Iteration > 50)), Computed(resumed.Metrics));
    }

    [Fact]
    public void A_checkpoint_taken_between_test_points_resumes_exactly()
    {
        var spec = Case(32, 0.01, 100, testInterval: 100);
        using var cancel = new CancellationTokenSource();
        var checkpoint = temp.File("mid-interval.ckpt");
        var observer = new Recorder { OnReported = m => { if (m.Iteration == 0) cancel.CancelAfter(TimeSpan.FromMilliseconds(200)); } };

        var cancelled = Trainer.Run(spec, Embedded.Value, Options(checkpoint, checkpointOnCancel: true), observer, cancel.Token);
        var resumed = Trainer.Run(spec, Embedded.Value, Options(resume: checkpoint));
        var uninterrupted = Trainer.Run(spec, Embedded.Value, Options());

        Assert.Equal(TrialOutcome.Cancelled, cancelled.Outcome);
        Assert.InRange(cancelled.Iteration, 1, 99);
        Assert.Equal(Computed(uninterrupted.Metrics.Where(m => m.Iteration == 100)), Computed(resumed.Metrics));
    }

    [Fact]
    public void A_checkpoint_of_another_trial_is_refused_by_name()
    {
        var checkpoint = temp.File("other.ckpt");
        Trainer.Run(Case(64, 0.01, 20, testInterval: 10), Embedded.Value, Options(checkpoint));

        var error = Assert.Throws<CheckpointUnreadableException>(() => Trainer.Run(Case(32, 0.01, 20, testInterval: 10), Embedded.Value, Options(resume: checkpoint)));
        Assert.Contains(checkpoint, error.Message);
        Assert.Contains("another trial", error.Message);
    }

    [Fact]
    public void A_damaged_checkpoint_is_refused_by_name()
    {
        var checkpoint = temp.File("damaged.ckpt");
        Trainer.Run(Case(64, 0.01, 20, testInterval: 10), Embedded.Value, Options(checkpoint));
        var bytes = File.ReadAllBytes(checkpoint);
        File.WriteAllBytes(checkpoint, bytes[..(bytes.Length / 2)]);

        // Its own type (a sweep starts such an attempt again from scratch), still bad input to `sweep train`.
        var error = Assert.Throws<CheckpointUnreadableException>(() => Trainer.Run(Case(64, 0.01, 20, testInterval: 10), Embedded.Value, Options(resume: checkpoint)));
        Assert.IsAssignableFrom<InvalidInputException>(error);
        Assert.Equal(checkpoint, error.Path);
        Assert.StartsWith("damaged checkpoint (tensor ", error.Cause);
        Assert.Equal($"{checkpoint}: {error.Cause}", error.Message);
    }

    [Fact]
    public void Versioned_checkpoints_go_to_one_file_per_iteration_and_each_resumes_exactly()
    {
        var spec = Case(64, 0.01, 60, testInterval: 20);
        var basePath = temp.File("trial.ckpt");
        var observer = new Recorder();

        var uninterrupted = Trainer.Run(spec, Embedded.Value, Options(basePath) with { VersionedCheckpoints = true }, observer);
        var resumed = Trainer.Run(spec, Embedded.Value, Options(resume: temp.File("trial.it000000020.ckpt")));

        Assert.Equal(new[] { (20, temp.File("trial.it000000020.ckpt")), (40, temp.File("trial.it000000040.ckpt")) }, observer.Saved);
        Assert.Equal(new[] { "trial.it000000020.ckpt", "trial.it000000040.ckpt" }, Directory.GetFiles(temp.Path).Select(Path.GetFileName).Order());
        Assert.Equal(Computed(uninterrupted.Metrics.Where(m => m.Iteration > 20)), Computed(resumed.Metrics));
    }

    [Fact]
    public void A_cuda_device_that_is_not_there_is_refused_clearly_and_auto_takes_what_is()
    {
        var error = Assert.Throws<InvalidInputException>(() => Trainer.Run(Case(64, 0.01, 10), Embedded.Value, new TrainingOptions(1, "cuda:99")));
        Assert.Contains("cuda:99", error.Message);
        Assert.Contains("tpu", Assert.Throws<InvalidInputException>(() => TorchDevices.Resolve("tpu")).Message);
        var expected = TorchSharp.torch.cuda.is_available() ? TorchSharp.DeviceType.CUDA : TorchSharp.DeviceType.CPU;
        Assert.Equal(expected, TorchDevices.Resolve("auto").type);
    }

    [Fact]
    public void A_non_finite_loss_under_the_initial_weights_is_a_fault_of_device_or_data_not_a_divergence()
    {
        // Weights that are NaN before any update (as memory a kernel never wrote would leave them),
        // given to the trainer as a checkpoint at iteration 0.
        var spec = Case(64, 0.01, 40, testInterval: 20);
        using var model = new LeNet();
        var tensors = model.named_parameters()
            .SelectMany(p => new[] { ("model." + p.name, p.parameter.shape), ("history." + p.name, p.parameter.shape) })
            .ToDictionary(t => t.Item1, t => (t.shape, Enumerable.Repeat(float.NaN, (int)t.shape.Aggregate(1L, (a, b) => a * b)).ToArray()));
        var checkpoint = temp.File("nan-weights.ckpt");
        new TrainerCheckpoint(TrainerCheckpoint.Fingerprint(spec), 0, 0, 0, IntervalSums.Empty, tensors).Save(checkpoint);

        var fault = Assert.Throws<FaultBeforeLearningException>(() => Trainer.Run(spec, Embedded.Value, Options(resume: checkpoint)));

        Assert.Equal("training loss is NaN under the initial weights (iteration 0, before any update): a fault of the device or the data, not a divergence", fault.Message);
    }

    private sealed class Recorder : ITrainingObserver
    {
        public Action<TrialMetrics>? OnReported { get; init; }
        public Action<int, string>? OnCheckpointed { get; init; }
        public List<int> Checkpoints { get; } = [];
        public List<(int, string)> Saved { get; } = [];

        public void OnMetrics(TrialMetrics metrics) => OnReported?.Invoke(metrics);

        public void OnCheckpoint(int iteration, string path)
        {
            Checkpoints.Add(iteration);
            Saved.Add((iteration, path));
            OnCheckpointed?.Invoke(iteration, path);
        }
    }
}
