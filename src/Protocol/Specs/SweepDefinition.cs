using System.Globalization;
using Sweep.Protocol.Training;

namespace Sweep.Protocol.Specs;

/// <summary>What trains in a sweep's trials.</summary>
public enum ModelKind
{
    /// <summary>Caffe's LeNet on MNIST, trained for real with TorchSharp.</summary>
    Lenet,

    /// <summary>No training: a deterministic learning curve with a sleep per iteration, and injected faults. For tests and benchmarks.</summary>
    Synthetic,

    /// <summary>The user's own program, run once per attempt (<see cref="CommandSpec"/>; docs/command-trials.md).</summary>
    Command,

    /// <summary>A .NET model of the user's, trained inside the worker process with TorchSharp (<see cref="PluginSpec"/>; docs/plugins.md).</summary>
    Plugin,
}

/// <summary>What each model needs of a worker slot.</summary>
public static class ModelKinds
{
    /// <summary>
    /// Whether the model trains with LibTorch inside the worker process (LeNet and plug-ins): its
    /// slots use CUDA devices when there are any and prove their device's arithmetic with the
    /// known-answer self-test before they take a trial.
    /// </summary>
    public static bool TrainsWithTorch(this ModelKind model) => model is ModelKind.Lenet or ModelKind.Plugin;
}

/// <summary>What the coordinator does when a trial runs out of memory.</summary>
public enum OutOfMemoryPolicy
{
    /// <summary>Record the trial as failed.</summary>
    Fail,

    /// <summary>Re-queue it with half the batch and the learning rate rescaled by the sweep's coupling exponent.</summary>
    HalveBatch,
}

/// <summary>
/// When a trial counts as diverged besides a NaN or infinite loss (always). Checked at every test
/// point; a diverged trial stops at once and is never retried.
/// </summary>
/// <param name="ChanceAfter">From this iteration on, test accuracy at or below <paramref name="ChanceAccuracy"/> is divergence (null: off).</param>
/// <param name="ChanceAccuracy">What counts as chance: 10 classes give 0.1; the default leaves a small margin.</param>
/// <param name="LossFactor">A mean training loss above this factor times the first one is divergence (null: off).</param>
public sealed record DivergencePolicy(int? ChanceAfter = null, double ChanceAccuracy = 0.11, double? LossFactor = null)
{
    /// <summary>
    /// Why <paramref name="metrics"/> show divergence, or null when they do not.
    /// <paramref name="firstTrainLoss"/> is the loss at iteration 0 (null when the run resumed later: the loss factor is then not checked).
    /// </summary>
    /// <remarks>
    /// Iteration 0 is never divergence: under the initial weights nothing has been learnt yet, so a
    /// non-finite loss there is a fault of the device or the data (<see cref="FaultBeforeLearning"/>).
    /// </remarks>
    /// <param name="metrics">The test point.</param>
    /// <param name="firstTrainLoss">The training loss at iteration 0, if this run measured it.</param>
    /// <param name="nanIsUnmeasured">
    /// A NaN figure was not measured (a command trial's program reports only some; its runner
    /// already ends the attempt on a non-finite figure it did report): only infinite ones count.
    /// </param>
    public string? Check(TrialMetrics metrics, double? firstTrainLoss, bool nanIsUnmeasured = false)
    {
        if (metrics.Iteration == 0) return null;
        bool NonFinite(double value) => !double.IsFinite(value) && !(nanIsUnmeasured && double.IsNaN(value));
        if (NonFinite(metrics.TrainLoss)) return "training loss is not finite";
        if (NonFinite(metrics.TestLoss)) return "test loss is not finite";
        if (ChanceAfter is { } after && metrics.Iteration >= after && metrics.TestAccuracy <= ChanceAccuracy)
            return string.Create(CultureInfo.InvariantCulture, $"test accuracy {metrics.TestAccuracy:0.####} is at chance (<= {ChanceAccuracy}) at iteration {metrics.Iteration}");
        if (LossFactor is { } factor && firstTrainLoss is { } first && metrics.Iteration > 0 && metrics.TrainLoss > factor * first)
            return string.Create(CultureInfo.InvariantCulture, $"training loss {metrics.TrainLoss:0.####} is above {factor} x the first loss {first:0.####}");
        return null;
    }

    /// <summary>
    /// Why the test point at iteration 0 (the first batch and the test split under the initial
    /// weights, before any update) shows a fault, or null: a non-finite loss there comes from the
    /// device or the data, not from learning, so the attempt fails and is retried (on another slot
    /// where there is one) instead of being recorded as diverged.
    /// </summary>
    public static string? FaultBeforeLearning(TrialMetrics metrics) =>
        metrics.Iteration != 0 ? null
        : !double.IsFinite(metrics.TrainLoss) ? NonFiniteBeforeLearning("training loss", metrics.TrainLoss)
        : !double.IsFinite(metrics.TestLoss) ? NonFiniteBeforeLearning("test loss", metrics.TestLoss)
        : null;

    /// <summary>The reason given when <paramref name="quantity"/> is <paramref name="value"/> (NaN or infinite) before any update.</summary>
    public static string NonFiniteBeforeLearning(string quantity, double value) =>
        $"{quantity} is {(double.IsNaN(value) ? "NaN" : "infinite")} under the initial weights (iteration 0, before any update): a fault of the device or the data, not a divergence";
}

/// <summary>How often a failing trial is tried, and how long to wait between tries (doubling each time).</summary>
public sealed record RetryPolicy(int MaxAttempts = 3, double BackoffSeconds = 1.0)
{
    public static readonly TimeSpan MaxDelay = TimeSpan.FromMinutes(5);

    /// <summary>The wait before attempt <paramref name="nextAttempt"/> (2, 3, …): backoff × 2^(nextAttempt − 2).</summary>
    public TimeSpan DelayBefore(int nextAttempt)
    {
        double seconds = BackoffSeconds * Math.Pow(2, Math.Max(0, nextAttempt - 2));
        return TimeSpan.FromSeconds(Math.Min(seconds, MaxDelay.TotalSeconds));
    }
}

/// <summary>A fault the synthetic model injects into one trial.</summary>
public enum FaultKind
{
    /// <summary>An exception from the trial: retried.</summary>
    Exception,

    /// <summary>The loss becomes NaN: divergence.</summary>
    Nan,

    /// <summary>The whole process ends at once, as with kill -9.</summary>
    Crash,

    /// <summary>Out of memory: handled by the sweep's on-out-of-memory policy.</summary>
    OutOfMemory,
}

/// <param name="Trial">The trial's name.</param>
/// <param name="AtIteration">The iteration at which it strikes.</param>
/// <param name="Kind">What happens.</param>
/// <param name="Attempts">The attempts it strikes in (1 = the first run of the trial).</param>
public sealed record SyntheticFault(string Trial, int AtIteration, FaultKind Kind, IReadOnlyList<int> Attempts);

/// <summary>
/// The synthetic model: a learning curve determined by batch size, learning rate and seed, with
/// <paramref name="IterationMs"/> of sleep per iteration; a learning rate at or above
/// <paramref name="DivergentLr"/> makes the loss NaN (like the study's CASE8).
/// </summary>
public sealed record SyntheticSpec(double IterationMs = 1.0, double DivergentLr = 0.08, IReadOnlyList<SyntheticFault>? Faults = null)
{
    public IReadOnlyList<SyntheticFault> FaultList => Faults ?? [];
}

/// <summary>One trial of a sweep: a stable id (the same cell always gets the same id), a readable name and what it computes.</summary>
public sealed record TrialDefinition(string Id, string Name, TrialSpec Spec);

/// <summary>
/// A sweep as expanded from its spec: everything the coordinator needs to run and resume it,
/// persisted with the sweep so that resuming needs no spec file.
/// </summary>
/// <param name="Name">The spec's name.</param>
/// <param name="Source">Where it came from: the spec file and the --set overrides, for the record.</param>
/// <param name="CouplingExponent">k in lr = lr_ref × (batch / batch_ref)^k, used when halve-batch rescales a trial.</param>
/// <param name="EarlyStopping">The policy that stops trials that will not win (null: off, every trial runs to max-iter).</param>
public sealed record SweepDefinition(
    string Name,
    string Source,
    ModelKind Model,
    IReadOnlyList<TrialDefinition> Trials,
    DivergencePolicy Divergence,
    RetryPolicy Retry,
    OutOfMemoryPolicy OnOutOfMemory,
    double CouplingExponent,
    SyntheticSpec Synthetic,
    CommandSpec? Command = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    PluginSpec? Plugin = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    EarlyStoppingSpec? EarlyStopping = null);
