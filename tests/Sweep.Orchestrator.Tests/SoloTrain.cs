using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests;

/// <summary>A trial alone: what `sweep train` computes for a spec, the reference a sweep's numbers are held to.</summary>
public static class SoloTrain
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>What a test point computed (not its wall-clock time or memory).</summary>
    public static (int, double, double, double, double, double) Computed(TrialMetrics m) =>
        (m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate);

    /// <summary>The test points of `sweep train --json` (a real process) for <paramref name="spec"/> with <paramref name="threads"/> LibTorch threads.</summary>
    public static List<(int, double, double, double, double, double)> Points(TrialSpec spec, int threads)
    {
        string F(double value) => value.ToString("R", CultureInfo.InvariantCulture);
        string I(int value) => value.ToString(CultureInfo.InvariantCulture);
        // sweep train has the paper's momentum and weight decay and no options for them.
        Assert.Equal((0.9, 0.0005), (spec.Solver.Momentum, spec.Solver.WeightDecay));
        var (exit, stdout, stderr) = SweepProcess.Run(
            "train", "--json", "--threads", I(threads),
            "--batch-size", I(spec.BatchSize), "--test-batch-size", I(spec.TestBatchSize), "--base-lr", F(spec.BaseLr),
            "--max-iter", I(spec.MaxIter), "--test-interval", I(spec.TestInterval), "--seed", I(spec.Seed),
            "--lr-policy", spec.Solver.Policy.ToString().ToLowerInvariant(), "--gamma", F(spec.Solver.Gamma), "--power", F(spec.Solver.Power));
        Assert.True(exit == 0, stdout + stderr);
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(line => line.Contains("\"iteration\"", StringComparison.Ordinal) && !line.Contains("\"final\"", StringComparison.Ordinal))
            .Select(line => Computed(JsonSerializer.Deserialize<TrialMetrics>(line, Json)!))
            .ToList();
    }
}
