using Sweep.Protocol.Events;
using Sweep.Protocol.Training;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Reporting;

/// <summary>When a trial first reached the target test accuracy: at a test point's iteration, after so many wall-clock seconds.</summary>
public sealed record TimeToTarget(int Iterations, double Seconds);

/// <summary>
/// One trial as the report sees it: its status row, its learning curve (see <see cref="TrialCurves"/>)
/// with the cumulative wall-clock seconds at each test point, and what follows from them.
/// </summary>
/// <param name="Record">The trial's folded state.</param>
/// <param name="Status">The same as `sweep status --json` shows it.</param>
/// <param name="Points">Test points in iteration order.</param>
/// <param name="CumulativeSeconds">Sum of <see cref="TrialMetrics.Seconds"/> up to and including each point.</param>
/// <param name="TimeToTarget">The first test point at or above the target accuracy; null when never reached.</param>
/// <param name="PlateauAccuracy">Mean test accuracy of the last two test points (completed trials only).</param>
/// <param name="RecommendedMaxIter">The first test point's iteration at which test accuracy reaches 99% of the plateau (completed trials only).</param>
/// <param name="SecondsPerIteration">Mean wall-clock seconds per training iteration, tests included (as `sweep status`).</param>
/// <param name="MemoryPercentOfReference">Peak memory as a percentage of the reference trial's.</param>
public sealed record TrialAnalysis(
    TrialRecord Record,
    StatusView.TrialStatus Status,
    IReadOnlyList<TrialMetrics> Points,
    IReadOnlyList<double> CumulativeSeconds,
    TimeToTarget? TimeToTarget,
    double? PlateauAccuracy,
    int? RecommendedMaxIter,
    double? SecondsPerIteration,
    double? MemoryPercentOfReference)
{
    /// <summary>Share of the plateau at which the recommended max-iter is taken.</summary>
    public const double PlateauShare = 0.99;

    public string Id => Record.Definition.Id;

    public string Name => Record.Definition.Name;

    public int BatchSize => Record.Definition.Spec.BatchSize;

    public double BaseLr => Record.Definition.Spec.BaseLr;

    public int MaxIter => Record.Definition.Spec.MaxIter;

    public TrialState State => Record.State;

    public bool Diverged => Record.State == TrialState.Diverged;

    /// <summary>
    /// Whether the trial can be named best by any criterion (time to target, final accuracy, coupling):
    /// only when it completed. A trial that reached the target and then diverged, failed, or has not
    /// finished yet is no recommendation, whatever its numbers.
    /// </summary>
    public bool CanBeBest => Record.State == TrialState.Completed;

    /// <summary>Why the trial cannot be best ("diverged at 20", "failed", "running, at iteration 40", "queued"); null when it can.</summary>
    public string? WhyNotEligible => Record.State switch
    {
        TrialState.Completed => null,
        TrialState.Diverged => $"diverged at {Record.DivergedAtIteration ?? Status.Iteration}",
        TrialState.Failed => "failed",
        TrialState.Stopped => $"stopped early at {Record.StoppedAtIteration}",
        TrialState.Running => $"running, at iteration {Status.Iteration}",
        _ => Record.State.ToString().ToLowerInvariant(),
    };

    /// <summary>Test points whose test accuracy is a number.</summary>
    public IEnumerable<TrialMetrics> TestPoints => Points.Where(p => double.IsFinite(p.TestAccuracy));

    public double? FinalTestAccuracy => TestPoints.LastOrDefault()?.TestAccuracy;

    public double? MaxTestAccuracy => TestPoints.Select(p => (double?)p.TestAccuracy).Max();

    /// <summary>Test accuracy at a test point at exactly <paramref name="iteration"/>.</summary>
    public double? TestAccuracyAt(int iteration) => TestPoints.FirstOrDefault(p => p.Iteration == iteration)?.TestAccuracy;

    /// <summary>Test accuracy at <paramref name="iteration"/>, linearly interpolated between test points; null outside the curve.</summary>
    public double? InterpolatedTestAccuracy(double iteration)
    {
        TrialMetrics? before = null;
        foreach (var point in TestPoints)
        {
            if (point.Iteration == iteration) return point.TestAccuracy;
            if (point.Iteration > iteration)
            {
                if (before is null) return null;
                double share = (iteration - before.Iteration) / (point.Iteration - before.Iteration);
                return before.TestAccuracy + share * (point.TestAccuracy - before.TestAccuracy);
            }
            before = point;
        }
        return null;
    }

    /// <summary>The first test point at or above <paramref name="target"/>, with the wall-clock seconds spent up to it.</summary>
    public TimeToTarget? TimeTo(double target)
    {
        for (int i = 0; i < Points.Count; i++)
        {
            if (Points[i].TestAccuracy >= target) return new TimeToTarget(Points[i].Iteration, CumulativeSeconds[i]);
        }
        return null;
    }

    /// <summary>Builds the analysis of one trial from its record and curve (memory relative to the reference is filled in later).</summary>
    public static TrialAnalysis Create(TrialRecord record, StatusView.TrialStatus status, IReadOnlyList<TrialMetrics> points, double targetAccuracy)
    {
        var cumulative = new double[points.Count];
        double sum = 0;
        for (int i = 0; i < points.Count; i++)
        {
            if (double.IsFinite(points[i].Seconds)) sum += points[i].Seconds;
            cumulative[i] = sum;
        }

        double? plateau = null;
        int? recommended = null;
        var tested = points.Where(p => double.IsFinite(p.TestAccuracy)).ToList();
        if (record.State == TrialState.Completed && tested.Count > 0)
        {
            plateau = tested.TakeLast(2).Average(p => p.TestAccuracy);
            recommended = tested.First(p => p.TestAccuracy >= PlateauShare * plateau.Value).Iteration;
        }

        var analysis = new TrialAnalysis(record, status, points, cumulative, null, plateau, recommended, record.SecondsPer100Iterations / 100.0, null);
        return analysis with { TimeToTarget = analysis.TimeTo(targetAccuracy) };
    }
}
