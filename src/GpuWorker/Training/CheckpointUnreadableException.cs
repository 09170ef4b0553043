using Sweep.Protocol;

namespace Sweep.GpuWorker.Training;

/// <summary>
/// A checkpoint file is there but cannot be used: truncated (an interrupted copy, a full disk),
/// corrupt, not a checkpoint of this kind at all, written for another trial (its fingerprint), or
/// holding another iteration than its name says (<see cref="CheckpointFiles.CheckBelongs"/>).
/// Thrown by both loaders (<see cref="TrainerCheckpoint.Load"/> and the synthetic model's) before
/// anything is restored. A sweep's worker treats it like a missing checkpoint: the attempt starts
/// again from scratch at once, and the coordinator records why. <c>sweep train --resume</c> refuses
/// it as bad input (it is an <see cref="InvalidInputException"/>: one line, exit code 2).
/// </summary>
public sealed class CheckpointUnreadableException : InvalidInputException
{
    /// <param name="path">The checkpoint file.</param>
    /// <param name="cause">What is wrong with it, in a few words, e.g. "damaged checkpoint (EndOfStreamException: …)".</param>
    /// <param name="inner">The exception reading it raised, if any.</param>
    public CheckpointUnreadableException(string path, string cause, Exception? inner = null)
        : base($"{path}: {cause}", inner)
    {
        Path = path;
        Cause = cause;
    }

    /// <summary>The checkpoint file that could not be read.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it, without the path (the message is "PATH: CAUSE").</summary>
    public string Cause { get; }
}
