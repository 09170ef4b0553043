namespace Sweep.Protocol.Training;

/// <summary>
/// What a trial measured at one test point: at iteration 0, every test interval and at the end.
/// Training figures are the means over the updates since the previous test point (at iteration 0:
/// the first batch under the initial weights); test figures cover the whole test split.
/// </summary>
public sealed record TrialMetrics(
    int Iteration,
    double TrainLoss,
    double TrainAccuracy,
    double TestLoss,
    double TestAccuracy,
    double LearningRate,
    double Seconds,
    long PeakMemoryBytes);

/// <summary>The loss became NaN or infinite at <paramref name="Iteration"/> (the update that produced it).</summary>
public sealed record DivergenceDetected(int Iteration, double Loss, string Reason);

/// <summary>How a trial ended.</summary>
public enum TrialOutcome
{
    Completed,
    Diverged,
    Cancelled,
}
