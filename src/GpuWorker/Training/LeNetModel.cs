using Sweep.GpuWorker.Data;
using Sweep.Protocol.Training;
using Sweep.Training;

namespace Sweep.GpuWorker.Training;

/// <summary>
/// Caffe's LeNet as a plug-in model (<see cref="ITrialModel"/>): the built-in model of
/// <c>model = lenet</c> sweeps, run by the same <see cref="Runners.PluginRunner"/> as any plug-in.
/// It trains with <see cref="Trainer"/> (the trial's spec rebuilt from the context, the dataset
/// loaded once per process), writes its checkpoints to the context's files and reports every test
/// point, checkpoint and divergence through the context, so the numbers are the trainer's own.
/// </summary>
public sealed class LeNetModel : ITrialModel
{
    /// <inheritdoc/>
    public void Train(ITrialContext context)
    {
        var spec = SpecOf(context);
        var data = MnistData.Shared(spec.Dataset);
        // A sweep's checkpoints are one file per iteration, named from the trial's base path; `sweep train --checkpoint` overwrites one file.
        string? first = context.CheckpointPath(0);
        string? basePath = first is null ? null : CheckpointFiles.BaseOf(first) ?? first;
        var options = new TrainingOptions(
            context.Threads,
            context.Device,
            basePath,
            context.ResumePath,
            CheckpointOnCancel: basePath is not null,
            VersionedCheckpoints: first is not null && CheckpointFiles.BaseOf(first) is not null);
        var result = Trainer.Run(spec, data, options, new ContextObserver(context), context.Cancellation);
        // A NaN or infinite loss at an update: the context makes it the trial's divergence at that iteration.
        if (result.Divergence is { } diverged) context.Report(diverged.Iteration, double.NaN, double.NaN, diverged.Loss);
    }

    /// <summary>The trial's spec as the trainer takes it, from the context's parameters (LeNet has no named parameters).</summary>
    /// <param name="context">The attempt's context.</param>
    /// <exception cref="ArgumentException">The context's learning-rate policy is not inv, fixed or step.</exception>
    public static TrialSpec SpecOf(ITrialContext context) => new(
        context.BatchSize,
        context.TestBatchSize,
        context.BaseLr,
        context.MaxIter,
        context.TestInterval,
        context.Seed,
        new SolverSpec(
            context.Momentum,
            context.WeightDecay,
            Enum.TryParse<LearningRatePolicy>(context.LearningRatePolicy, ignoreCase: true, out var policy) ? policy : throw new ArgumentException($"unknown learning-rate policy '{context.LearningRatePolicy}'", nameof(context)),
            context.Gamma,
            context.Power,
            context.StepSize),
        new DatasetSpec(context.DatasetPath, context.TrainCount, context.TestCount));

    /// <summary>The trainer's test points and checkpoints, to the context (the trainer's own seconds: they carry an interval's time across a checkpoint).</summary>
    private sealed class ContextObserver(ITrialContext context) : ITrainingObserver
    {
        public void OnMetrics(TrialMetrics metrics) =>
            context.Report(metrics.Iteration, metrics.TestAccuracy, metrics.TestLoss, metrics.TrainLoss, metrics.TrainAccuracy, metrics.LearningRate, metrics.Seconds);

        public void OnCheckpoint(int iteration, string path) => context.Checkpointed(iteration);
    }
}
