using System.Globalization;

namespace Sweep.Protocol.Specs;

/// <summary>Which rule stops trials that will not win.</summary>
public enum EarlyStoppingPolicy
{
    /// <summary>
    /// Asynchronous successive halving (Li et al., "A System for Massively Parallel Hyperparameter
    /// Tuning", MLSys 2020): at each rung a trial continues only if it is in the top
    /// 1/reduction-factor of the trials that reached that rung so far.
    /// </summary>
    Asha,

    /// <summary>
    /// The median stopping rule (Golovin et al., "Google Vizier", KDD 2017): stop a trial whose best
    /// metric so far is worse than the median of the other trials' running averages at the same iteration.
    /// </summary>
    Median,

    /// <summary>Stop a trial whose metric has not improved by more than min-delta over its last patience test points.</summary>
    Plateau,
}

/// <summary>The metric a policy compares, with its direction.</summary>
public enum StoppingMetric
{
    /// <summary>Test accuracy: higher is better.</summary>
    TestAccuracy,

    /// <summary>Test loss: lower is better.</summary>
    TestLoss,
}

/// <summary>
/// What a policy measures a trial's progress in: its grace period, ASHA's rungs and the median
/// rule's "same point" are in this unit (Ray Tune's <c>time_attr</c>).
/// </summary>
public enum StoppingResource
{
    /// <summary>Training iterations (the study's x axis): every trial is compared at equal iterations.</summary>
    Iterations = 0,

    /// <summary>
    /// Training images seen, iteration × the trial's batch size (the halved one after an
    /// out-of-memory, from the point it is halved on): trials of different
    /// batch sizes are compared on equal data (the study's per-epoch view), and a rung costs every
    /// trial about the same compute, so the large batches, the expensive ones, are judged after few
    /// iterations instead of leading every rung on the data they have seen more of.
    /// </summary>
    Images = 1,
}

/// <summary>
/// <c>early-stopping { policy, metric, resource, grace-period, … }</c> of a sweep spec (off when absent).
/// </summary>
/// <param name="Policy">The rule.</param>
/// <param name="Metric">What it compares (test accuracy by default).</param>
/// <param name="GracePeriod">How much progress (in <paramref name="Resource"/>'s unit) before any trial may be stopped; for ASHA also the first rung.</param>
/// <param name="ReductionFactor">ASHA's η (&gt; 1): rungs at grace-period × η^k, the top 1/η continue.</param>
/// <param name="MinTrials">Median rule: how many other trials must have reached the iteration before it judges.</param>
/// <param name="Patience">Plateau: test points without improvement before a stop.</param>
/// <param name="MinDelta">Plateau: an improvement of this much or less does not count (in the metric's units).</param>
/// <param name="Resource">What progress is measured in: iterations (the default) or images seen.</param>
public sealed record EarlyStoppingSpec(
    EarlyStoppingPolicy Policy,
    StoppingMetric Metric = StoppingMetric.TestAccuracy,
    int GracePeriod = 100,
    double ReductionFactor = 3,
    int MinTrials = 3,
    int Patience = 3,
    double MinDelta = 0,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    StoppingResource Resource = StoppingResource.Iterations)
{
    /// <summary>Whether a larger value of <see cref="Metric"/> is better.</summary>
    public bool HigherIsBetter => Metric == StoppingMetric.TestAccuracy;

    /// <summary>The metric's name in the spec's words: test-accuracy or test-loss.</summary>
    public string MetricName => Metric == StoppingMetric.TestAccuracy ? "test-accuracy" : "test-loss";

    /// <summary>The resource's name in the spec's words: iterations or images.</summary>
    public string ResourceName => Resource == StoppingResource.Images ? "images" : "iterations";

    /// <summary>
    /// A test point's progress in the resource's unit: <paramref name="iteration"/> itself, or
    /// iteration × <paramref name="batchSize"/> images (capped at <see cref="int.MaxValue"/>).
    /// </summary>
    public int Progress(int iteration, int batchSize) =>
        Resource == StoppingResource.Images ? (int)Math.Min((long)iteration * batchSize, int.MaxValue) : iteration;

    /// <summary>
    /// ASHA's rungs below <paramref name="maxProgress"/> (max-iter in the resource's unit):
    /// grace-period × η^k for k = 0, 1, … (rounded down to whole units; a trial that reaches max-iter
    /// has nothing left to save).
    /// </summary>
    public IReadOnlyList<int> Rungs(int maxProgress)
    {
        var rungs = new List<int>();
        for (double rung = GracePeriod; rung < maxProgress; rung *= ReductionFactor)
        {
            int whole = (int)Math.Floor(rung);
            if (rungs.Count == 0 || whole > rungs[^1]) rungs.Add(whole);
        }
        return rungs;
    }

    /// <summary>A value of the metric as the policies' messages write it (four decimals).</summary>
    public static string Format(double value) => value.ToString("0.####", CultureInfo.InvariantCulture);
}
