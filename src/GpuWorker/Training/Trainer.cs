using System.Diagnostics;
using Sweep.GpuWorker.Data;
using Sweep.Protocol;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.Training;

/// <summary>Where and how a trial runs; none of it changes what the trial computes except the thread count.</summary>
/// <param name="Threads">LibTorch intra-op threads; results are reproducible for a given count.</param>
/// <param name="Device"><c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</param>
/// <param name="CheckpointPath">
/// Where the trial's checkpoints are written (null: no checkpoints): this one file, overwritten at
/// every checkpoint, or with <paramref name="VersionedCheckpoints"/> the base path of one file per
/// checkpoint iteration (see <see cref="CheckpointFileAt"/>).
/// </param>
/// <param name="ResumeFrom">A checkpoint to continue from (null: start fresh); any file either way wrote.</param>
/// <param name="CheckpointOnCancel">Write a checkpoint at the iteration where cancellation stops the trial.</param>
/// <param name="VersionedCheckpoints">
/// Write each checkpoint to its own file, <see cref="CheckpointFiles.Versioned"/> of
/// <paramref name="CheckpointPath"/> (how a sweep's workers run trials, so the journal's checkpoint is
/// never overwritten by a later one); false (<c>sweep train --checkpoint FILE</c>) overwrites the one file.
/// </param>
public sealed record TrainingOptions(
    int Threads,
    string Device = "auto",
    string? CheckpointPath = null,
    string? ResumeFrom = null,
    bool CheckpointOnCancel = false,
    bool VersionedCheckpoints = false)
{
    /// <summary>
    /// The file the checkpoint at <paramref name="iteration"/> is written to: null without
    /// <see cref="CheckpointPath"/>; <see cref="CheckpointPath"/> itself unless
    /// <see cref="VersionedCheckpoints"/>; else <see cref="CheckpointFiles.Versioned"/>
    /// (<c>TRIAL.ckpt</c> → <c>TRIAL.it000000300.ckpt</c>). The trainer and the synthetic model both
    /// name their files through this, and nothing else does.
    /// </summary>
    /// <param name="iteration">The iteration the checkpoint holds (updates done so far).</param>
    public string? CheckpointFileAt(int iteration) =>
        CheckpointPath is null ? null
        : VersionedCheckpoints ? CheckpointFiles.Versioned(CheckpointPath, iteration)
        : CheckpointPath;

    public static int DefaultThreads => Environment.ProcessorCount;

    /// <summary>The most LibTorch threads a slot may ask for: four per core (LibTorch starts that many; far more exhausts the machine).</summary>
    public static int MaxThreads => 4 * Environment.ProcessorCount;

    /// <summary>Why <paramref name="threads"/> cannot be a thread count here (null: it can), as "<paramref name="name"/> must …".</summary>
    public static string? ThreadsProblem(int threads, string name) =>
        threads < 1 ? $"{name} must be positive, got {threads}"
        : threads > MaxThreads ? $"{name} {threads} is more than 4 per core ({MaxThreads} on the {Environment.ProcessorCount} core(s) here): LibTorch would start that many threads"
        : null;
}

/// <summary>Hears a running trial; called on the training thread, so implementations only hand messages on.</summary>
public interface ITrainingObserver
{
    void OnMetrics(TrialMetrics metrics);

    void OnCheckpoint(int iteration, string path)
    {
    }
}

/// <summary>How a trial ended and everything it measured.</summary>
public sealed record TrainingResult(
    TrialOutcome Outcome,
    int Iteration,
    IReadOnlyList<TrialMetrics> Metrics,
    DivergenceDetected? Divergence,
    string? CheckpointPath);

/// <summary>
/// A loss was NaN or infinite under the initial weights (iteration 0, before any update): a fault of
/// the device or the data, never a divergence. The attempt fails and follows the retry policy.
/// </summary>
public sealed class FaultBeforeLearningException(string message) : Exception(message);

/// <summary>
/// Trains Caffe's LeNet for one trial: the inv/fixed/step policy, Caffe's SGD, a test at iteration 0,
/// every test interval and at the end. NaN or infinite loss stops the trial at the iteration it
/// appears (what to do about it is the coordinator's business), except under the initial weights
/// (see <see cref="FaultBeforeLearningException"/>). The kernels are chosen by
/// <see cref="TorchKernels.EnsureApplied"/> before any tensor work. Runs on the calling thread: callers
/// that must stay responsive (actors) run it on a thread of its own.
/// </summary>
public static class Trainer
{
    /// <summary>
    /// What every trial trained in this process does first, before any tensor exists (a plug-in's
    /// constructor included): checks the spec and the thread count, applies the kernels that compute
    /// correctly on this CPU (<see cref="TorchKernels"/>) and LibTorch's thread count, and resolves the device.
    /// </summary>
    /// <exception cref="InvalidInputException">The spec or the thread count cannot run.</exception>
    public static Device Prepare(TrialSpec spec, TrainingOptions options)
    {
        var problems = spec.Problems();
        if (problems.Count > 0) throw new InvalidInputException(problems[0]);
        if (TrainingOptions.ThreadsProblem(options.Threads, "threads") is { } threadsProblem) throw new InvalidInputException(threadsProblem);
        TorchKernels.EnsureApplied();
        set_num_threads(options.Threads);
        return TorchDevices.Resolve(options.Device);
    }

    public static TrainingResult Run(TrialSpec spec, MnistData data, TrainingOptions options, ITrainingObserver? observer = null, CancellationToken cancellation = default)
    {
        var device = Prepare(spec, options);
        using var session = new TrainingSession(spec, data, device);
        return session.Run(options, observer, cancellation);
    }

    /// <summary>
    /// Mean loss and accuracy of <paramref name="model"/> on <paramref name="images"/> [N, 1, 28, 28]
    /// and <paramref name="labels"/> [N], without autograd, in batches of <paramref name="batchSize"/>
    /// (the last one shorter): how every test point is computed.
    /// </summary>
    internal static (double Loss, double Accuracy) Evaluate(LeNet model, Tensor images, Tensor labels, int batchSize)
    {
        using var _ = no_grad();
        long count = images.shape[0];
        double lossSum = 0;
        long correct = 0;
        for (long start = 0; start < count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            long length = Math.Min(batchSize, count - start);
            var batchLabels = labels.narrow(0, start, length);
            var logits = model.call(images.narrow(0, start, length));
            lossSum += nn.functional.cross_entropy(logits, batchLabels, reduction: nn.Reduction.Sum).item<float>();
            correct += logits.argmax(1).eq(batchLabels).sum().item<long>();
        }
        return (lossSum / count, (double)correct / count);
    }

    /// <summary>The state of one running trial; owns every tensor it allocates.</summary>
    private sealed class TrainingSession : IDisposable
    {
        private readonly TrialSpec spec;
        private readonly Device device;
        private readonly LeNet model = new();
        private readonly CaffeSgd solver;
        private readonly Tensor trainImages, trainLabels, testImages, testLabels;
        private readonly PeakMemory memory;
        private readonly List<TrialMetrics> metrics = [];
        private EpochSampler sampler;
        private IntervalSums interval = IntervalSums.Empty;
        private int iteration;

        public TrainingSession(TrialSpec spec, MnistData data, Device device)
        {
            this.spec = spec;
            this.device = device;
            memory = new PeakMemory(device);
            (trainImages, trainLabels) = ToTensors(data.Train, device);
            (testImages, testLabels) = ToTensors(data.Test, device);
            model.to(device);
            solver = new CaffeSgd(
                model.named_parameters().Select(p => (p.name, (Tensor)p.parameter, LeNet.LearningRateMultiplier(p.name))),
                spec.Solver.Momentum,
                spec.Solver.WeightDecay);
            sampler = new EpochSampler(data.Train.Count, spec.Seed);
        }

        public TrainingResult Run(TrainingOptions options, ITrainingObserver? observer, CancellationToken cancellation)
        {
            var clock = Stopwatch.StartNew();
            if (options.ResumeFrom is { } resumePath)
            {
                Restore(TrainerCheckpoint.Load(resumePath), resumePath);
            }
            else
            {
                using var generator = new Generator((ulong)spec.Seed, device);
                model.InitializeLikeCaffe(generator);
                Report(FirstBatchUnderInitialWeights(), clock, observer);
            }

            while (iteration < spec.MaxIter)
            {
                if (cancellation.IsCancellationRequested)
                {
                    string? saved = null;
                    if (options.CheckpointOnCancel && options.CheckpointFileAt(iteration) is { } path)
                    {
                        interval = interval with { Seconds = interval.Seconds + clock.Elapsed.TotalSeconds };
                        saved = SaveCheckpoint(path, observer);
                    }
                    return new TrainingResult(TrialOutcome.Cancelled, iteration, metrics, null, saved);
                }

                var (loss, correct, seen) = TrainStep();
                if (!double.IsFinite(loss) && iteration == 0)
                    throw new FaultBeforeLearningException(DivergencePolicy.NonFiniteBeforeLearning("training loss", loss));
                if (!double.IsFinite(loss))
                {
                    var divergence = new DivergenceDetected(iteration, loss, double.IsNaN(loss) ? "loss is NaN" : "loss is infinite");
                    return new TrainingResult(TrialOutcome.Diverged, iteration, metrics, divergence, null);
                }
                interval = interval.Add(loss, correct, seen);
                iteration++;

                if (iteration % spec.TestInterval == 0 || iteration == spec.MaxIter)
                {
                    var train = (interval.LossSum / interval.Steps, (double)interval.Correct / interval.Seen);
                    Report(train, clock, observer);
                    if (options.CheckpointFileAt(iteration) is { } path && iteration < spec.MaxIter) SaveCheckpoint(path, observer);
                }
            }
            return new TrainingResult(TrialOutcome.Completed, iteration, metrics, null, null);
        }

        /// <summary>One forward, backward and Caffe update; returns the loss before the update, as Caffe displays it.</summary>
        private (double Loss, long Correct, long Seen) TrainStep()
        {
            using var scope = NewDisposeScope();
            var rate = spec.Solver.LearningRateAt(spec.BaseLr, iteration);
            var (images, labels) = Batch(sampler.Next(spec.BatchSize));
            var logits = model.call(images);
            var loss = nn.functional.cross_entropy(logits, labels);
            double lossValue = loss.item<float>();
            if (!double.IsFinite(lossValue)) return (lossValue, 0, 0);
            long correct = logits.argmax(1).eq(labels).sum().item<long>();
            solver.ZeroGrad();
            loss.backward();
            solver.Step(rate);
            return (lossValue, correct, spec.BatchSize);
        }

        /// <summary>Caffe shows a training loss at iteration 0: the first batch's, under the initial weights.</summary>
        private (double Loss, double Accuracy) FirstBatchUnderInitialWeights()
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var (images, labels) = Batch(sampler.Peek(spec.BatchSize));
            var logits = model.call(images);
            double loss = nn.functional.cross_entropy(logits, labels).item<float>();
            double accuracy = logits.argmax(1).eq(labels).sum().item<long>() / (double)spec.BatchSize;
            return (loss, accuracy);
        }

        private (double Loss, double Accuracy) Test() => Evaluate(model, testImages, testLabels, spec.TestBatchSize);

        /// <summary>
        /// A test point, to the observer. At iteration 0 (under the initial weights) a non-finite loss
        /// is a fault of the device or the data, thrown before anyone hears of it.
        /// </summary>
        private void Report((double Loss, double Accuracy) train, Stopwatch clock, ITrainingObserver? observer)
        {
            var (testLoss, testAccuracy) = Test();
            var entry = new TrialMetrics(
                iteration,
                train.Loss,
                train.Accuracy,
                testLoss,
                testAccuracy,
                spec.Solver.LearningRateAt(spec.BaseLr, iteration),
                interval.Seconds + clock.Elapsed.TotalSeconds,
                memory.Sample());
            if (DivergencePolicy.FaultBeforeLearning(entry) is { } fault) throw new FaultBeforeLearningException(fault);
            metrics.Add(entry);
            observer?.OnMetrics(entry);
            interval = IntervalSums.Empty;
            clock.Restart();
        }

        private (Tensor Images, Tensor Labels) Batch(long[] indices)
        {
            var index = tensor(indices, device: device);
            return (trainImages.index_select(0, index), trainLabels.index_select(0, index));
        }

        private string SaveCheckpoint(string path, ITrainingObserver? observer)
        {
            var tensors = new Dictionary<string, (long[], float[])>();
            foreach (var (name, parameter) in model.named_parameters()) tensors["model." + name] = TrainerCheckpoint.Capture(parameter);
            foreach (var (name, history) in solver.Histories) tensors["history." + name] = TrainerCheckpoint.Capture(history);
            new TrainerCheckpoint(TrainerCheckpoint.Fingerprint(spec), iteration, sampler.Epoch, sampler.Cursor, interval, tensors).Save(path);
            observer?.OnCheckpoint(iteration, path);
            return path;
        }

        private void Restore(TrainerCheckpoint checkpoint, string path)
        {
            CheckpointFiles.CheckBelongs(path, checkpoint.SpecFingerprint, checkpoint.Iteration, TrainerCheckpoint.Fingerprint(spec), spec.MaxIter);
            foreach (var (name, parameter) in model.named_parameters()) checkpoint.RestoreInto("model." + name, parameter);
            foreach (var (name, history) in solver.Histories) checkpoint.RestoreInto("history." + name, history);
            iteration = checkpoint.Iteration;
            sampler = new EpochSampler((int)trainImages.shape[0], spec.Seed, checkpoint.Epoch, checkpoint.Cursor);
            interval = checkpoint.Interval;
        }

        /// <summary>Caffe's input scale, 1/256 (0.00390625), applied once when the data is loaded.</summary>
        private static (Tensor Images, Tensor Labels) ToTensors(MnistSplit split, Device device)
        {
            using var bytes = tensor(split.Pixels, [split.Count, 1, MnistSplit.Side, MnistSplit.Side], dtype: ScalarType.Byte);
            using var labelBytes = tensor(split.Labels, dtype: ScalarType.Byte);
            var images = bytes.to(ScalarType.Float32).mul_(1.0 / 256).to(device).DetachFromDisposeScope();
            var labels = labelBytes.to(ScalarType.Int64).to(device).DetachFromDisposeScope();
            return (images, labels);
        }

        public void Dispose()
        {
            solver.Dispose();
            model.Dispose();
            trainImages.Dispose();
            trainLabels.Dispose();
            testImages.Dispose();
            testLabels.Dispose();
        }
    }
}
