using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>
/// The early-stopping policies on hand-made test points (pure, no actors): each decision against the
/// number worked out by hand in the comment above it.
/// </summary>
public sealed class EarlyStoppingTests
{
    /// <summary>Folds (trial, iteration, value) points in order; the decisions, by trial.</summary>
    private static (EarlyStopping State, Dictionary<string, StopDecision> Stops) Fold(EarlyStoppingSpec spec, int maxIter, params (string Trial, int Iteration, double Value)[] points)
    {
        var state = EarlyStopping.Start(spec);
        var stops = new Dictionary<string, StopDecision>();
        foreach (var (trial, iteration, value) in points)
        {
            (state, var stop) = state.Observe(trial, iteration, value, maxIter);
            if (stop is not null) stops.Add(trial, stop);
        }
        return (state, stops);
    }

    [Fact]
    public void Asha_rungs_are_grace_period_times_eta_to_the_k_below_max_iter()
    {
        Assert.Equal([100, 300, 900], new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, GracePeriod: 100, ReductionFactor: 3).Rungs(1000));
        Assert.Equal([100, 200, 400, 800], new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, GracePeriod: 100, ReductionFactor: 2).Rungs(1000));
        Assert.Equal([50, 125, 312], new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, GracePeriod: 50, ReductionFactor: 2.5).Rungs(500));
    }

    [Fact]
    public void Asha_keeps_the_top_third_of_each_rung_as_trials_arrive()
    {
        var spec = new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, GracePeriod: 100, ReductionFactor: 3);
        // Rung 100. a: record [0.9], cut-off (2/3 quantile) 0.9: continues.
        // b: record [0.8, 0.9], position 2/3 × 1 → 0.8 + 0.6667 × 0.1 = 0.86667: 0.8 stops.
        // c: record [0.8, 0.9, 0.95], position 2/3 × 2 = 1.3333 → 0.9 + 0.3333 × 0.05 = 0.91667: 0.95 continues.
        // d: record [0.8, 0.9, 0.91, 0.95], position 2 → 0.91: 0.91 is not worse, continues.
        // a at 200: between rungs, not judged. a at 300: rung 300 record [0.97]: continues.
        var (_, stops) = Fold(spec, 1000, ("a", 100, 0.9), ("b", 100, 0.8), ("c", 100, 0.95), ("d", 100, 0.91), ("a", 200, 0.5), ("a", 300, 0.97));

        var b = Assert.Single(stops).Value;
        Assert.Equal("b", stops.Keys.Single());
        Assert.Equal((EarlyStoppingPolicy.Asha, 100, 0.8), (b.Policy, b.Iteration, b.Value));
        Assert.Equal(0.8 + 2.0 / 3 * 0.1, b.Threshold, 12);
        Assert.Equal("test-accuracy 0.8 at rung 100 is outside the top 1/3 of 2 trial(s) (cut-off 0.8667)", b.Reason);
    }

    [Fact]
    public void Asha_in_images_judges_each_batch_size_at_equal_data_and_the_stop_names_the_iteration()
    {
        var spec = new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, GracePeriod: 1600, ReductionFactor: 3, Resource: StoppingResource.Images);
        var case1 = TrialSpec.PaperCase1(new DatasetSpec("unused"));
        var small = case1 with { BatchSize = 16, MaxIter = 1000 };
        var large = case1 with { BatchSize = 256, MaxIter = 1000 };
        // Rungs in images: 1600 × 3^k below each trial's max-iter × batch: 16,000 images for batch 16
        // (1600, 4800, 14400), 256,000 for batch 256 (… 43200, 129600).
        Assert.Equal([1600, 4800, 14400], spec.Rungs(spec.Progress(1000, 16)));
        Assert.Equal([1600, 4800, 14400, 43200, 129600], spec.Rungs(spec.Progress(1000, 256)));
        TrialProgress Point(string trial, int iteration, double accuracy) =>
            new(trial, 1, new TrialMetrics(iteration, 0.1, 0.9, 0.2, accuracy, 0.01, 1, 0), DateTimeOffset.UnixEpoch);
        var state = EarlyStopping.Start(spec);
        // s (batch 16) at iteration 100 = 1,600 images: rung 1600, record [0.90]: continues.
        // s at 300 = 4,800 images: rung 4800, record [0.95]: continues.
        // s at 900 = 14,400 images: rung 14400, record [0.97]: continues.
        // l (batch 256) at iteration 100 = 25,600 images: judged at the highest rung at or below, 14400:
        // record [0.96, 0.97], cut-off 0.96 + 2/3 × 0.01 = 0.96667: 0.96 stops, at iteration 100.
        TrialStoppedEarly? stop = null;
        foreach (var (trial, spec1, iteration, accuracy) in new[] { ("s", small, 100, 0.90), ("s", small, 300, 0.95), ("s", small, 900, 0.97), ("l", large, 100, 0.96) })
        {
            (state, var decided) = state.Decide(Point(trial, iteration, accuracy), spec1);
            if (decided is not null) stop = decided;
        }
        Assert.NotNull(stop);
        Assert.Equal(("l", 100, 0.96), (stop.TrialId, stop.Iteration, stop.Value));
        Assert.Equal(0.96 + 2.0 / 3 * 0.01, stop.Threshold, 12);
        Assert.Equal("test-accuracy 0.96 at rung 14400 images is outside the top 1/3 of 2 trial(s) (cut-off 0.9667)", stop.Reason);
        // The same points in iterations: l at iteration 100 is judged at rung 100 alone, and continues.
        var byIterations = EarlyStopping.Start(spec with { GracePeriod = 100, Resource = StoppingResource.Iterations });
        (byIterations, _) = byIterations.Decide(Point("s", 100, 0.90), small);
        Assert.Null(byIterations.Decide(Point("l", 100, 0.96), large).Stop);
    }

    [Fact]
    public void Asha_on_a_loss_keeps_the_lowest_third_and_judges_a_point_past_a_rung_once()
    {
        var spec = new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, StoppingMetric.TestLoss, GracePeriod: 100, ReductionFactor: 3);
        // Test points every 200: a trial's point at 200 is judged at rung 100, its point at 400 at rung 300, 600 at none new.
        // Rung 100: a 0.5 → [0.5] cut-off 0.5 continues; b 0.4 → [0.4, 0.5] 1/3 quantile 0.4 + 0.3333 × 0.1 = 0.43333: continues;
        // c 0.6 → [0.4, 0.5, 0.6] 1/3 quantile at position 0.6667 → 0.4 + 0.6667 × 0.1 = 0.46667: 0.6 is worse, stops.
        // Rung 300: a 0.3 → continues (alone); a at 600: rung 300 already judged, 900 not reached: nothing.
        var (state, stops) = Fold(spec, 1000, ("a", 200, 0.5), ("b", 200, 0.4), ("c", 200, 0.6), ("a", 400, 0.3), ("a", 600, 0.9));
        Assert.Equal(["c"], stops.Keys);
        Assert.Equal(0.4 + 2.0 / 3 * 0.1, stops["c"].Threshold, 12);
        Assert.Equal(3, state.RungValues[100].Count);
        Assert.Equal(["a"], state.RungValues[300].Keys);
    }

    [Fact]
    public void A_stopped_trial_NaN_iteration_zero_grace_and_the_last_point_are_never_judged()
    {
        var spec = new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, GracePeriod: 100, ReductionFactor: 2);
        var (_, stops) = Fold(spec, 400,
            ("a", 0, 0.1), ("a", 50, 0.1), ("a", 100, 0.9), ("b", 100, double.NaN), ("b", 100, 0.1), ("b", 200, 0.99), ("c", 400, 0.0));
        // b stops at rung 100 (0.1 against [0.1, 0.9]'s median 0.5); its later point changes nothing; c's point is its max-iter.
        Assert.Equal(["b"], stops.Keys);
        Assert.Equal(100, stops["b"].Iteration);
    }

    [Fact]
    public void Median_compares_the_best_so_far_with_the_median_of_the_others_running_averages()
    {
        var spec = new EarlyStoppingSpec(EarlyStoppingPolicy.Median, GracePeriod: 200, MinTrials: 2);
        // At 200, x's best is max(0.5, 0.6) = 0.6. The others that reached 200: a, mean(0.7, 0.8) = 0.75;
        // b, mean(0.6, 0.9) = 0.75; c, mean(0.5, 0.6) = 0.55. Median of [0.55, 0.75, 0.75] = 0.75 > 0.6: x stops.
        // y at 200 (best 0.8 ≥ 0.75... others now a, b, c: same median 0.75): continues.
        // z at 100: inside the grace period.
        var (_, stops) = Fold(spec, 1000,
            ("a", 100, 0.7), ("a", 200, 0.8), ("b", 100, 0.6), ("b", 200, 0.9), ("c", 100, 0.5), ("c", 200, 0.6),
            ("x", 100, 0.5), ("x", 200, 0.6), ("y", 100, 0.8), ("y", 200, 0.7), ("z", 100, 0.1));
        Assert.Equal(["c", "x"], stops.Keys.Order());
        // c was judged at 200 against a (0.75) and b (0.75): median 0.75 > best 0.6.
        Assert.Equal((0.6, 0.75), (stops["x"].Value, stops["x"].Threshold));
        Assert.Equal("best test-accuracy 0.6 is below the median 0.75 of 3 other trial(s)' running averages at iteration 200", stops["x"].Reason);
    }

    [Fact]
    public void Median_waits_for_min_trials_others_at_the_same_iteration()
    {
        var spec = new EarlyStoppingSpec(EarlyStoppingPolicy.Median, GracePeriod: 100, MinTrials: 3);
        var (_, stops) = Fold(spec, 1000, ("a", 100, 0.9), ("b", 100, 0.9), ("x", 100, 0.1), ("c", 100, 0.9), ("y", 100, 0.1));
        // x had only two others at 100; y has three (a, b, c; x is at 100 too, but its 0.1 makes four: median of [0.1, 0.9, 0.9, 0.9] = 0.9).
        Assert.Equal(["y"], stops.Keys);
        Assert.Equal(0.9, stops["y"].Threshold);
    }

    [Fact]
    public void Plateau_stops_after_patience_points_without_an_improvement_above_min_delta()
    {
        var spec = new EarlyStoppingSpec(EarlyStoppingPolicy.Plateau, GracePeriod: 100, Patience: 2, MinDelta: 0.005);
        // a: 0.90, 0.95, 0.953, 0.954: at 400 the last two (0.953, 0.954) beat the best before (0.95) by 0.004 ≤ 0.005: stops.
        // b: 0.90, 0.95, 0.96: at 300 the last two (0.95, 0.96) beat 0.90 by 0.06: continues.
        var (_, stops) = Fold(spec, 1000, ("a", 100, 0.90), ("a", 200, 0.95), ("a", 300, 0.953), ("b", 100, 0.90), ("b", 200, 0.95), ("b", 300, 0.96), ("a", 400, 0.954));
        Assert.Equal(["a"], stops.Keys);
        Assert.Equal((400, 0.954, 0.955), (stops["a"].Iteration, stops["a"].Value, Math.Round(stops["a"].Threshold, 12)));
        Assert.Equal("test-accuracy has not improved by more than 0.005 in 2 test point(s) (best 0.954, needed 0.955)", stops["a"].Reason);
    }

    [Fact]
    public void A_resumed_fold_decides_as_the_uninterrupted_one_and_a_retried_attempts_repeated_points_are_not_judged_again()
    {
        var spec = new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, GracePeriod: 100, ReductionFactor: 2);
        (string, int, double)[] points = [("a", 100, 0.9), ("b", 100, 0.95), ("a", 200, 0.96), ("c", 100, 0.5), ("b", 200, 0.97), ("c", 200, 0.99)];
        var whole = Fold(spec, 1000, points);
        // Folded in two halves (a resume rebuilds the state from the journal's first half), then on.
        var first = Fold(spec, 1000, points[..3]).State;
        var stops = new List<string>();
        foreach (var (trial, iteration, value) in points[3..])
        {
            (first, var stop) = first.Observe(trial, iteration, value, 1000);
            if (stop is not null) stops.Add(trial);
        }
        Assert.Equal(whole.Stops.Keys.Order(), stops.Order());
        Assert.Equal(["c"], stops);
        // a's attempt 2 repeats 100 and 200 from its checkpoint: judged already at both rungs, so no new decision and no new record entry.
        var (again, stop2) = whole.State.Observe("a", 200, 0.1, 1000);
        Assert.Null(stop2);
        Assert.Equal(whole.State.RungValues[200].Count, again.RungValues[200].Count);
    }

    [Fact]
    public void Quantile_is_numpys_linear_interpolation()
    {
        // numpy.percentile([1, 2, 4, 8], 25) = 1.75; 50 → 3.0; 90 → 6.8; one value → itself.
        Assert.Equal(1.75, EarlyStopping.Quantile([8, 1, 4, 2], 0.25), 12);
        Assert.Equal(3.0, EarlyStopping.Quantile([8, 1, 4, 2], 0.5), 12);
        Assert.Equal(6.8, EarlyStopping.Quantile([8, 1, 4, 2], 0.9), 12);
        Assert.Equal(5.0, EarlyStopping.Quantile([5], 0.7), 12);
    }
}
