using System.Collections.Immutable;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Coordination;

/// <summary>A policy's verdict that a trial stops at a test point: what it lost to, in numbers and in words.</summary>
/// <param name="Policy">The policy that decided.</param>
/// <param name="Iteration">The test point's progress in the spec's resource (iterations or images).</param>
/// <param name="Value">The trial's figure that lost (its metric at the rung; its best so far; its best of the last patience points).</param>
/// <param name="Threshold">What it had to reach (the rung's cut-off; the median; the earlier best plus min-delta).</param>
/// <param name="Reason">One line for status and the report: "below rung 300 cut-off 0.962 (0.951)".</param>
public sealed record StopDecision(EarlyStoppingPolicy Policy, int Iteration, double Value, double Threshold, string Reason);

/// <summary>
/// The early-stopping policies as a pure fold over a sweep's test points, in journal order: the
/// state is what the points so far say, and <see cref="Observe"/> gives the next state and, when the
/// point ends its trial, the decision. Replaying the same points gives the same decisions, so a
/// resumed sweep decides exactly as an uninterrupted one would have. No actors, no clock.
/// </summary>
public sealed record EarlyStopping(
    EarlyStoppingSpec Spec,
    ImmutableDictionary<string, ImmutableSortedDictionary<int, double>> Points,
    ImmutableDictionary<int, ImmutableDictionary<string, double>> RungValues,
    ImmutableHashSet<string> Stopped)
{
    /// <summary>No test point seen yet.</summary>
    public static EarlyStopping Start(EarlyStoppingSpec spec) => new(
        spec,
        ImmutableDictionary.Create<string, ImmutableSortedDictionary<int, double>>(StringComparer.Ordinal),
        ImmutableDictionary<int, ImmutableDictionary<string, double>>.Empty,
        ImmutableHashSet.Create<string>(StringComparer.Ordinal));

    /// <summary>
    /// Folds in trial <paramref name="trialId"/>'s test point (<paramref name="iteration"/>,
    /// <paramref name="value"/> of the spec's metric) and says whether it stops there. A point of a
    /// trial already stopped, a NaN value (not measured) and iteration 0 change nothing; a point seen
    /// again (a retried attempt repeats iterations after its checkpoint) replaces the earlier one but
    /// is never judged twice at an ASHA rung.
    /// </summary>
    /// <param name="trialId">The trial.</param>
    /// <param name="iteration">The test point's progress in the spec's resource (its iteration, or the images seen by then).</param>
    /// <param name="value">The metric at that point.</param>
    /// <param name="maxIter">The trial's max-iter in the same unit: it is never stopped at its last point (there is nothing left to save).</param>
    public (EarlyStopping State, StopDecision? Stop) Observe(string trialId, int iteration, double value, int maxIter)
    {
        if (Stopped.Contains(trialId) || double.IsNaN(value) || iteration <= 0) return (this, null);
        var points = Points.GetValueOrDefault(trialId) ?? ImmutableSortedDictionary<int, double>.Empty;
        var next = this with { Points = Points.SetItem(trialId, points.SetItem(iteration, value)) };
        if (iteration < Spec.GracePeriod || iteration >= maxIter) return (next, null);
        var (state, stop) = Spec.Policy switch
        {
            EarlyStoppingPolicy.Asha => next.Asha(trialId, iteration, value, maxIter),
            EarlyStoppingPolicy.Median => (next, next.Median(trialId, iteration)),
            _ => (next, next.Plateau(trialId, iteration)),
        };
        return stop is null ? (state, null) : (state with { Stopped = state.Stopped.Add(trialId) }, stop);
    }

    /// <summary>
    /// The point <paramref name="progress"/> gives the policy (its metric at its progress in the
    /// spec's resource: the iteration, or iteration × the trial's batch size in images; with the
    /// trial's max-iter in the same unit), or null when it has none (the metric is NaN: not measured).
    /// </summary>
    /// <param name="spec">The sweep's early-stopping spec.</param>
    /// <param name="progress">The test point being recorded.</param>
    /// <param name="trial">The trial's spec as defined (its max-iter and batch size).</param>
    public static ObservedTestPoint? PointOf(EarlyStoppingSpec spec, TrialProgress progress, TrialSpec trial)
    {
        double value = spec.Metric == StoppingMetric.TestAccuracy ? progress.Metrics.TestAccuracy : progress.Metrics.TestLoss;
        return double.IsNaN(value)
            ? null
            : new ObservedTestPoint(progress.TrialId, spec.Progress(progress.Metrics.Iteration, trial.BatchSize), value, spec.Progress(trial.MaxIter, trial.BatchSize));
    }

    /// <summary>
    /// <see cref="Observe"/> for a test point being recorded: the next state and, when the point ends
    /// its trial, the event that says so (of the same attempt, at the same time, at the point's iteration).
    /// </summary>
    public (EarlyStopping State, TrialStoppedEarly? Stop) Decide(TrialProgress progress, TrialSpec trial)
    {
        if (PointOf(Spec, progress, trial) is not { } point) return (this, null);
        var (state, stop) = Observe(point.TrialId, point.Iteration, point.Value, point.MaxIter);
        return (state, stop is null ? null : new TrialStoppedEarly(progress.TrialId, progress.Attempt, progress.Metrics.Iteration, stop.Policy, stop.Value, stop.Threshold, stop.Reason, progress.At));
    }

    /// <summary>The state after <paramref name="points"/>, folded in order from the start (a snapshot's record of them).</summary>
    public static EarlyStopping Replay(EarlyStoppingSpec spec, IEnumerable<ObservedTestPoint> points) =>
        points.Aggregate(Start(spec), (state, p) => state.Observe(p.TrialId, p.Iteration, p.Value, p.MaxIter).State);

    /// <summary>Whether <paramref name="a"/> is strictly worse than <paramref name="b"/> under the metric's direction.</summary>
    private bool Worse(double a, double b) => Spec.HigherIsBetter ? a < b : a > b;

    private string Metric => Spec.MetricName;

    /// <summary>A rung as the reasons write it: "300", or "25600 images".</summary>
    private string Rung(int rung) => Spec.Resource == StoppingResource.Images ? $"{rung} images" : $"{rung}";

    /// <summary>A point of progress as the reasons write it: "iteration 300", or "25600 images".</summary>
    private string At(int progress) => Spec.Resource == StoppingResource.Images ? $"{progress} images" : $"iteration {progress}";

    /// <summary>
    /// ASHA at a rung: the trial's value joins the rung's record, and it continues if it is not worse
    /// than the rung's cut-off, the (1 − 1/η) quantile of the record (for a loss, the 1/η quantile),
    /// with linear interpolation between order statistics (numpy's default), as Ray Tune's ASHA does.
    /// A trial is judged once per rung, at its first point at or past it (test points need not fall on
    /// rungs); a point between rungs, or a repeated one, is not judged again.
    /// </summary>
    private (EarlyStopping, StopDecision?) Asha(string trialId, int iteration, double value, int maxIter)
    {
        // The highest rung at or below this point; judged only if the trial has not been judged there yet.
        int? rung = Spec.Rungs(maxIter).Where(r => r <= iteration).Select(r => (int?)r).LastOrDefault();
        var judged = rung is { } at ? RungValues.GetValueOrDefault(at) ?? ImmutableDictionary.Create<string, double>(StringComparer.Ordinal) : null;
        if (rung is not { } r || judged is null || judged.ContainsKey(trialId)) return (this, null);
        var record = judged.Add(trialId, value);
        var next = this with { RungValues = RungValues.SetItem(r, record) };
        double q = Spec.HigherIsBetter ? 1 - 1 / Spec.ReductionFactor : 1 / Spec.ReductionFactor;
        double cutoff = Quantile(record.Values.ToList(), q);
        return Worse(value, cutoff)
            ? (next, new StopDecision(EarlyStoppingPolicy.Asha, iteration, value, cutoff,
                $"{Metric} {EarlyStoppingSpec.Format(value)} at rung {Rung(r)} is outside the top 1/{EarlyStoppingSpec.Format(Spec.ReductionFactor)} of {record.Count} trial(s) (cut-off {EarlyStoppingSpec.Format(cutoff)})"))
            : (next, null);
    }

    /// <summary>
    /// The median rule at a test point: the trial's best so far against the median of the other
    /// trials' running averages (the mean of their points up to this iteration), over the trials that
    /// have reached it, once there are at least min-trials of them.
    /// </summary>
    private StopDecision? Median(string trialId, int iteration)
    {
        var others = Points.Where(p => p.Key != trialId && p.Value.Keys.Any(i => i >= iteration))
            .Select(p => p.Value.Where(point => point.Key <= iteration).Select(point => point.Value).DefaultIfEmpty(double.NaN).Average())
            .Where(average => !double.IsNaN(average))
            .ToList();
        if (others.Count < Spec.MinTrials) return null;
        var mine = Points[trialId].Where(point => point.Key <= iteration).Select(point => point.Value).ToList();
        double best = Spec.HigherIsBetter ? mine.Max() : mine.Min();
        double median = Quantile(others, 0.5);
        return Worse(best, median)
            ? new StopDecision(EarlyStoppingPolicy.Median, iteration, best, median,
                $"best {Metric} {EarlyStoppingSpec.Format(best)} is below the median {EarlyStoppingSpec.Format(median)} of {others.Count} other trial(s)' running averages at {At(iteration)}")
            : null;
    }

    /// <summary>
    /// Plateau at a test point: the best of the trial's last patience points does not beat the best
    /// before them by more than min-delta (needs patience + 1 points after iteration 0).
    /// </summary>
    private StopDecision? Plateau(string trialId, int iteration)
    {
        // Up to this point: a retried attempt repeats iterations an earlier attempt already reported beyond its checkpoint.
        var values = Points[trialId].Where(point => point.Key <= iteration).Select(point => point.Value).ToList();
        if (values.Count <= Spec.Patience) return null;
        var before = values[..^Spec.Patience];
        var recent = values[^Spec.Patience..];
        double bestBefore = Spec.HigherIsBetter ? before.Max() : before.Min();
        double bestRecent = Spec.HigherIsBetter ? recent.Max() : recent.Min();
        double improvement = Spec.HigherIsBetter ? bestRecent - bestBefore : bestBefore - bestRecent;
        double threshold = Spec.HigherIsBetter ? bestBefore + Spec.MinDelta : bestBefore - Spec.MinDelta;
        return improvement > Spec.MinDelta
            ? null
            : new StopDecision(EarlyStoppingPolicy.Plateau, iteration, bestRecent, threshold,
                $"{Metric} has not improved by more than {EarlyStoppingSpec.Format(Spec.MinDelta)} in {Spec.Patience} test point(s) (best {EarlyStoppingSpec.Format(bestRecent)}, needed {EarlyStoppingSpec.Format(threshold)})");
    }

    /// <summary>The <paramref name="q"/> quantile of <paramref name="values"/> with linear interpolation between order statistics (numpy.percentile's default).</summary>
    public static double Quantile(IReadOnlyCollection<double> values, double q)
    {
        var sorted = values.Order().ToArray();
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}
