namespace Sweep.Training;

/// <summary>
/// A model a sweep trains in its worker processes: one instance per attempt, created with its public
/// parameterless constructor, whose <see cref="Train"/> runs the attempt to its end on the calling
/// thread (the worker's training thread). A sweep names it with <c>model = plugin</c> and
/// <c>plugin { assembly = PATH, type = NAME }</c> (docs/plugins.md).
/// </summary>
/// <remarks>
/// The worker has set LibTorch's thread count and kernels (the same correct-on-this-CPU kernels as
/// for the built-in LeNet, checked by the slot's self-test) before <see cref="Train"/> is called; the
/// model uses <see cref="ITrialContext.Device"/> and reports through the context. What it throws fails
/// the attempt (retried by the sweep's retry policy), except an out-of-memory error, which follows
/// the sweep's <c>on-out-of-memory</c> policy, and <see cref="CheckpointUnreadableException"/>.
/// </remarks>
public interface ITrialModel
{
    /// <summary>
    /// Trains one attempt of a trial: from scratch, or from the checkpoint of
    /// <see cref="ITrialContext.ResumeIteration"/> when it is not null; reports a test point at
    /// iteration 0 (fresh runs), every <see cref="ITrialContext.TestInterval"/> iterations and at
    /// <see cref="ITrialContext.MaxIter"/> (<see cref="ITrialContext.Report"/>); writes checkpoints
    /// (<see cref="ITrialContext.CheckpointPath"/>, then <see cref="ITrialContext.Checkpointed"/>); and
    /// returns when it has done <see cref="ITrialContext.MaxIter"/> iterations or, once
    /// <see cref="ITrialContext.Cancellation"/> is cancelled, within one iteration (writing a checkpoint
    /// of where it is first, when <see cref="ITrialContext.CheckpointDirectory"/> is not null).
    /// </summary>
    /// <param name="context">The trial's parameters, where it runs, and where its reports go.</param>
    void Train(ITrialContext context);
}
