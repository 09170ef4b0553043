using Sweep.GpuWorker.Training;
using Sweep.Protocol.Messages;

namespace Sweep.GpuWorker.Runners;

/// <summary>
/// Runs one attempt of a trial to its end on the calling thread (the worker gives it a thread of
/// its own). Reports each test point and checkpoint through the observer, stops within one
/// iteration when cancelled (writing a checkpoint first when the options ask for one), returns
/// Diverged for a NaN or infinite loss, and throws <see cref="TrialOutOfMemoryException"/> when the
/// device runs out of memory; any other exception is a failed attempt.
/// </summary>
public interface ITrialRunner
{
    TrainingResult Run(RunTrial trial, TrainingOptions options, ITrainingObserver observer, CancellationToken cancellation);
}

/// <summary>The device ran out of memory: the sweep's on-out-of-memory policy decides what follows.</summary>
public sealed class TrialOutOfMemoryException(string message, Exception? inner = null) : Exception(message, inner);
