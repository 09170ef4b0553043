namespace Sweep.Training;

/// <summary>
/// What an attempt of a trial is given and reports through (<see cref="ITrialModel.Train"/>): its
/// parameters, where it runs, its data and checkpoints, cancellation, and the test points it measures.
/// Every member is called on the training thread.
/// </summary>
public interface ITrialContext
{
    /// <summary>Training mini-batch size (images per update), at least 1.</summary>
    int BatchSize { get; }

    /// <summary>Mini-batch size for evaluating the test split (changes no number, only memory and speed), at least 1.</summary>
    int TestBatchSize { get; }

    /// <summary>The base learning rate (positive); <see cref="LearningRateAt"/> applies the sweep's schedule to it.</summary>
    double BaseLr { get; }

    /// <summary>How many updates the trial makes in all (iterations are counted from 0 to this).</summary>
    int MaxIter { get; }

    /// <summary>Report a test point every this many iterations (and at iteration 0 and <see cref="MaxIter"/>).</summary>
    int TestInterval { get; }

    /// <summary>The trial's seed: the same parameters and seed must give the same numbers.</summary>
    int Seed { get; }

    /// <summary>The sweep's solver momentum (<c>solver.momentum</c>, default 0.9), for models that use it.</summary>
    double Momentum { get; }

    /// <summary>The sweep's weight decay (<c>solver.weight-decay</c>, default 0.0005), for models that use it.</summary>
    double WeightDecay { get; }

    /// <summary>The sweep's learning-rate policy (<c>solver.lr-policy</c>): <c>inv</c> (the default), <c>fixed</c> or <c>step</c>; <see cref="LearningRateAt"/> applies it.</summary>
    string LearningRatePolicy { get; }

    /// <summary>γ of the learning-rate policy (<c>solver.gamma</c>, default 0.001).</summary>
    double Gamma { get; }

    /// <summary>The power of the <c>inv</c> policy (<c>solver.power</c>, default 0.75).</summary>
    double Power { get; }

    /// <summary>Iterations per step of the <c>step</c> policy (<c>solver.step-size</c>, default 1000).</summary>
    int StepSize { get; }

    /// <summary>
    /// The learning rate of the update at <paramref name="iteration"/> (from 0) under the sweep's
    /// schedule (<c>solver.lr-policy</c>: inv by default, <c>base-lr × (1 + γ·iter)^(−power)</c>; fixed; step).
    /// </summary>
    /// <param name="iteration">The update's iteration, from 0.</param>
    double LearningRateAt(int iteration);

    /// <summary>The names of the trial's named parameters (the spec's own keys, e.g. <c>dropout</c>), sorted (ordinal).</summary>
    IReadOnlyList<string> ParameterNames { get; }

    /// <summary>The named parameter <paramref name="name"/> as a whole number.</summary>
    /// <param name="name">The parameter's name, e.g. <c>hidden</c>.</param>
    /// <exception cref="TrialParameterException">The trial has no such parameter, or it is not an integer.</exception>
    long GetInteger(string name);

    /// <summary>The named parameter <paramref name="name"/> as a real number (an integer converts).</summary>
    /// <param name="name">The parameter's name, e.g. <c>dropout</c>.</param>
    /// <exception cref="TrialParameterException">The trial has no such parameter, or it is not a number.</exception>
    double GetReal(string name);

    /// <summary>The named parameter <paramref name="name"/> as text; only a string parameter is one.</summary>
    /// <param name="name">The parameter's name, e.g. <c>optimizer</c>.</param>
    /// <exception cref="TrialParameterException">The trial has no such parameter, or it is not a string.</exception>
    string GetString(string name);

    /// <summary>The named parameter <paramref name="name"/> as a boolean.</summary>
    /// <param name="name">The parameter's name, e.g. <c>batch-norm</c>.</param>
    /// <exception cref="TrialParameterException">The trial has no such parameter, or it is not a boolean.</exception>
    bool GetBoolean(string name);

    /// <summary>The LibTorch device to train on: <c>cpu</c>, or <c>cuda:N</c> on a GPU slot (pass it to <c>torch.device</c>).</summary>
    string Device { get; }

    /// <summary>LibTorch's intra-op threads for this slot (already set by the worker).</summary>
    int Threads { get; }

    /// <summary>
    /// The folder of the trial's dataset: the four standard MNIST IDX files
    /// (<c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>, <c>t10k-images-idx3-ubyte</c>,
    /// <c>t10k-labels-idx1-ubyte</c>, each possibly with <c>.gz</c>); the sweep's <c>dataset.path</c>,
    /// by default the embedded 8,000/2,000 subset. An absolute path.
    /// </summary>
    string DatasetPath { get; }

    /// <summary>Use only the first this many training images (null: all of them).</summary>
    int? TrainCount { get; }

    /// <summary>Use only the first this many test images (null: all of them).</summary>
    int? TestCount { get; }

    /// <summary>
    /// The folder the trial's checkpoints go to (the same for every attempt of the trial, an absolute
    /// path), or null when this run keeps no checkpoints. Write through <see cref="CheckpointPath"/>.
    /// </summary>
    string? CheckpointDirectory { get; }

    /// <summary>
    /// The file the checkpoint of the state after <paramref name="iteration"/> updates is written to
    /// (in <see cref="CheckpointDirectory"/>, one file per iteration, never another iteration's), or
    /// null when the run keeps no checkpoints. Write it completely (to a temporary name, then rename),
    /// then call <see cref="Checkpointed"/>.
    /// </summary>
    /// <param name="iteration">Updates done, 0 to 999,999,999.</param>
    string? CheckpointPath(int iteration);

    /// <summary>
    /// The checkpoint file to resume from, or null for a fresh run: the one the sweep recorded last,
    /// <see cref="CheckpointPath"/>(<see cref="ResumeIteration"/>). A resumed run must give exactly
    /// the numbers an uninterrupted one gives: save everything the next steps depend on (weights,
    /// optimizer state, random generators, the current interval's sums). A file that cannot be read
    /// is <see cref="CheckpointUnreadableException"/>.
    /// </summary>
    string? ResumePath { get; }

    /// <summary>
    /// The iteration of <see cref="ResumePath"/>, or null for a fresh run (and for the one file of a
    /// LeNet trial checkpointed by a build before one file per iteration, whose name does not say it).
    /// </summary>
    int? ResumeIteration { get; }

    /// <summary>Cancelled when the attempt must stop (the sweep is interrupted, the slot leaves, or the trial diverged): checkpoint and return within one iteration.</summary>
    CancellationToken Cancellation { get; }

    /// <summary>
    /// Reports a test point. A NaN or infinite training loss after iteration 0 is a divergence: the
    /// point is not recorded, the trial is Diverged at that iteration ("loss is NaN") and
    /// <see cref="Cancellation"/> is cancelled; a non-finite test loss is recorded and is a divergence
    /// too ("test loss is not finite"); at iteration 0 (the initial weights) either is a fault of the
    /// device or the data: the attempt fails. The sweep's divergence policy (chance accuracy, loss
    /// factor) also applies, and stops the attempt through <see cref="Cancellation"/>.
    /// </summary>
    /// <param name="iteration">Updates done so far (0 for the initial weights).</param>
    /// <param name="testAccuracy">Fraction of the test split classified right, 0 to 1.</param>
    /// <param name="testLoss">Mean loss over the test split.</param>
    /// <param name="trainLoss">Mean training loss over the updates since the previous test point (at 0: the first batch's, under the initial weights).</param>
    /// <param name="trainAccuracy">Mean training accuracy over the same updates, 0 to 1; NaN: not measured.</param>
    /// <param name="learningRate">The learning rate at <paramref name="iteration"/>; NaN: not measured.</param>
    /// <param name="seconds">
    /// The wall-clock seconds the updates since the previous test point took; NaN (the default): the
    /// time since the previous report (since the start of this attempt, for its first), which a model
    /// that carries the time of an interval across a checkpoint can correct here.
    /// </param>
    void Report(int iteration, double testAccuracy, double testLoss, double trainLoss, double trainAccuracy = double.NaN, double learningRate = double.NaN, double seconds = double.NaN);

    /// <summary>
    /// Says that the file <see cref="CheckpointPath"/>(<paramref name="iteration"/>) is completely
    /// written: the sweep records it, and a later attempt resumes from it.
    /// </summary>
    /// <param name="iteration">The iteration the checkpoint holds.</param>
    void Checkpointed(int iteration);

    /// <summary>Writes a line to the trial's log (<c>sweep logs ID --trial NAME</c>), at Info.</summary>
    /// <param name="message">One line of text.</param>
    void Log(string message);
}
