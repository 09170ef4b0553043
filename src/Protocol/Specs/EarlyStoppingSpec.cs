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
/// <c>early-stopping { policy, metric, grace-period, … }</c> of a sweep spec (off when absent).
/// </summary>
/// <param name="Policy">The rule.</param>
/// <param name="Metric">What it compares (test accuracy by default).</param>
/// <param name="GracePeriod">Iterations before any trial may be stopped; for ASHA also the first rung.</param>
/// <param name="ReductionFactor">ASHA's η (&gt; 1): rungs at grace-period × η^k, the top 1/η continue.</param>
/// <param name="MinTrials">Median rule: how many other trials must have reached the iteration before it judges.</param>
/// <param name="Patience">Plateau: test points without improvement before a stop.</param>
/// <param name="MinDelta">Plateau: an improvement of this much or less does not count (in the metric's units).</param>
public sealed record EarlyStoppingSpec(
    EarlyStoppingPolicy Policy,
    StoppingMetric Metric = StoppingMetric.TestAccuracy,
    int GracePeriod = 100,
    double ReductionFactor = 3,
    int MinTrials = 3,
    int Patience = 3,
    double MinDelta = 0)
{
    /// <summary>Whether a larger value of <see cref="Metric"/> is better.</summary>
    public bool HigherIsBetter => Metric == StoppingMetric.TestAccuracy;

    /// <summary>The metric's name in the spec's words: test-accuracy or test-loss.</summary>
    public string MetricName => Metric == StoppingMetric.TestAccuracy ? "test-accuracy" : "test-loss";

    /// <summary>
    /// ASHA's rungs below <paramref name="maxIter"/>: grace-period × η^k for k = 0, 1, … (rounded
    /// down to whole iterations; a trial that reaches max-iter has nothing left to save).
    /// </summary>
    public IReadOnlyList<int> Rungs(int maxIter)
    {
        var rungs = new List<int>();
        for (double rung = GracePeriod; rung < maxIter; rung *= ReductionFactor)
        {
            int whole = (int)Math.Floor(rung);
            if (rungs.Count == 0 || whole > rungs[^1]) rungs.Add(whole);
        }
        return rungs;
    }

    /// <summary>A value of the metric as the policies' messages write it (four decimals).</summary>
    public static string Format(double value) => value.ToString("0.####", CultureInfo.InvariantCulture);
}
