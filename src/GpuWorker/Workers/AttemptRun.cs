using Sweep.GpuWorker.Runners;
using Sweep.GpuWorker.Training;
using Sweep.Protocol;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Workers;

/// <summary>
/// Runs one attempt of a trial to its end on the calling thread, where the model trains (a worker
/// process, or a thread of the tests' in-process slots): every report it makes
/// (<see cref="TestPointReported"/>, <see cref="TrialCheckpointSaved"/>, <see cref="TrialCheckpointMissing"/>)
/// goes to <c>report</c> as it happens, and it returns how the attempt ended. It applies the sweep's
/// divergence policy at every test point and stops the moment it says so, stops on cancellation
/// (writing a checkpoint first), and turns what a runner throws into an end: out of memory, a bad
/// input, a fault before learning, or any other exception as a failed attempt. Never throws.
/// </summary>
public static class AttemptRun
{
    /// <summary>
    /// Runs <paramref name="trial"/> with <paramref name="runner"/>. A checkpoint that cannot be read
    /// (<see cref="CheckpointUnreadableException"/>) is treated like a missing one, once: a
    /// <see cref="TrialCheckpointMissing"/> with the reason is reported, the trial's versioned files
    /// go (the damaged one with them) and the same attempt runs from scratch at once.
    /// </summary>
    /// <param name="runner">What trains the trial's model.</param>
    /// <param name="trial">The attempt; its <see cref="RunTrial.ResumeFrom"/> is a file on this node, or null.</param>
    /// <param name="options">Threads, device, checkpoint path and the checkpoint to resume from.</param>
    /// <param name="report">Receives each report, on the calling thread, in order.</param>
    /// <param name="cancellation">Stops the attempt within one iteration, with a checkpoint when the options ask for one.</param>
    /// <returns>The attempt's end; a stopped attempt's reason is null (the caller knows why it stopped it).</returns>
    public static TrialEnded Run(ITrialRunner runner, RunTrial trial, TrainingOptions options, Action<ISweepMessage> report, CancellationToken cancellation)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var observer = new Observer(trial, report, stop);
        TrainingResult? result = null;
        Exception? error = null;
        try
        {
            result = RunOnce(runner, trial, options, observer, report, stop.Token);
        }
        catch (Exception e)
        {
            error = e;
        }
        return End(trial, result, error, observer);
    }

    private static TrainingResult RunOnce(ITrialRunner runner, RunTrial trial, TrainingOptions options, Observer observer, Action<ISweepMessage> report, CancellationToken cancellation)
    {
        try
        {
            return runner.Run(trial, options, observer, cancellation);
        }
        catch (CheckpointUnreadableException damage) when (options.ResumeFrom is { } path)
        {
            report(new TrialCheckpointMissing(trial.Trial.Id, trial.Attempt, path, damage.Cause));
            var failures = CheckpointFiles.Delete(TrialFilesIn(trial, [options.CheckpointPath!, path]));
            foreach (var failure in failures) Console.Error.WriteLine($"could not delete a checkpoint of trial {trial.Trial.Name}: {failure}");
            return runner.Run(trial, options with { ResumeFrom = null }, observer, cancellation);
        }
    }

    /// <summary>The trial's versioned checkpoint files (and unfinished writes of them) in the folders of <paramref name="paths"/>.</summary>
    public static IReadOnlyList<string> TrialFilesIn(RunTrial trial, IEnumerable<string> paths) =>
        paths.Select(path => Path.GetDirectoryName(Path.GetFullPath(path))!)
            .Distinct(StringComparer.Ordinal)
            .SelectMany(directory => CheckpointFiles.VersionedIn(trial.CheckpointPath, directory))
            .ToList();

    private static TrialEnded End(RunTrial trial, TrainingResult? result, Exception? error, Observer observer)
    {
        return (result, error) switch
        {
            (_, TrialOutOfMemoryException oom) => Ended(TrialEndKind.OutOfMemory, observer.LastIteration, oom.Message),
            (_, InvalidInputException bad) => Ended(TrialEndKind.Failed, 0, bad.Message),
            (_, FaultBeforeLearningException fault) => Ended(TrialEndKind.Failed, 0, fault.Message),
            // A command trial's program failed: its message says how (exit code or signal, last line on stderr).
            (_, CommandFailedException failed) => Ended(TrialEndKind.Failed, observer.LastIteration, failed.Message),
            (_, { } e) => Ended(TrialEndKind.Failed, observer.LastIteration, $"{e.GetType().Name}: {e.Message.Split('\n')[0]}"),
            ({ Outcome: TrialOutcome.Completed } done, _) => Ended(TrialEndKind.Completed, done.Iteration, null),
            ({ Outcome: TrialOutcome.Diverged, Divergence.Iteration: 0 } diverged, _) =>
                Ended(TrialEndKind.Failed, 0, DivergencePolicy.NonFiniteBeforeLearning("training loss", diverged.Divergence!.Loss)),
            ({ Outcome: TrialOutcome.Diverged } diverged, _) => Ended(TrialEndKind.Diverged, diverged.Divergence!.Iteration, diverged.Divergence.Reason),
            ({ }, _) when observer.FaultReason is { } fault => Ended(TrialEndKind.Failed, 0, fault),
            ({ }, _) when observer.DivergenceReason is { } reason => Ended(TrialEndKind.Diverged, observer.LastIteration, reason),
            ({ } stopped, _) => Ended(TrialEndKind.Stopped, stopped.Iteration, null, stopped.CheckpointPath),
            _ => Ended(TrialEndKind.Failed, 0, "the attempt ended without a result"),
        };

        TrialEnded Ended(TrialEndKind kind, int iteration, string? reason, string? checkpoint = null) =>
            new(trial.Trial.Id, trial.Attempt, kind, iteration, reason, checkpoint);
    }

    /// <summary>Reports each test point and checkpoint, and stops the attempt the moment the sweep's divergence policy says so.</summary>
    private sealed class Observer(RunTrial trial, Action<ISweepMessage> report, CancellationTokenSource stop) : ITrainingObserver
    {
        private double? firstTrainLoss;

        public string? DivergenceReason { get; private set; }

        public string? FaultReason { get; private set; }

        public int LastIteration { get; private set; }

        /// <summary>A command trial's program reports only some figures: NaN is one it did not measure (and a non-finite one it did ends the attempt in its runner).</summary>
        private readonly bool nanIsUnmeasured = trial.Model == ModelKind.Command;

        public void OnMetrics(TrialMetrics metrics)
        {
            if (!nanIsUnmeasured && DivergencePolicy.FaultBeforeLearning(metrics) is { } fault)
            {
                FaultReason = fault;
                stop.Cancel();
                return;
            }
            LastIteration = metrics.Iteration;
            if (metrics.Iteration == 0 && !double.IsNaN(metrics.TrainLoss)) firstTrainLoss = metrics.TrainLoss;
            report(new TestPointReported(trial.Trial.Id, trial.Attempt, metrics));
            if (trial.Divergence.Check(metrics, firstTrainLoss, nanIsUnmeasured) is { } reason)
            {
                DivergenceReason = reason;
                stop.Cancel();
            }
        }

        public void OnCheckpoint(int iteration, string path) =>
            report(new TrialCheckpointSaved(trial.Trial.Id, trial.Attempt, iteration, path));
    }
}
