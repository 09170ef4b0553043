namespace Sweep.GpuWorker.Synthetic;

/// <summary>
/// The synthetic model's learning curve: a pure function of (batch size, base learning rate, seed,
/// iteration), so a run is identical every time and a resumed run needs nothing but the iteration.
/// </summary>
/// <remarks>
/// <para>
/// Training progresses at a rate proportional to <c>(lr / 0.01) × sqrt(batch / 64)</c> (a larger
/// lr × batch product learns faster, as in the study), scaled by ±5 % per seed. After
/// <c>p = iteration × rate / 10</c> units of progress the remaining fraction of the way is
/// <c>1 / (1 + p)</c>: fast at first, then slowly, like LeNet on MNIST. For CASE1 (batch 64,
/// lr 0.01) test accuracy goes from chance (0.1) to about 0.90 at iteration 100 and 0.97 at 1,000,
/// approaching a plateau of 0.98; the loss falls from ln 10 ≈ 2.30 (a uniform guess over ten
/// digits) towards 0.03.
/// </para>
/// <para>
/// Noise comes from a hash of (seed, iteration, channel), not from a stateful generator, so it
/// needs no state in a checkpoint. A training batch is noisier the smaller it is (∝ 1/√batch); the
/// test split is large, so its figures jitter only slightly.
/// </para>
/// </remarks>
internal sealed class SyntheticCurve
{
    private const double Chance = 0.1;
    private const double Plateau = 0.98;

    /// <summary>Training batches end up slightly better than the test split, as a network that fits its data does.</summary>
    private const double TrainPlateau = 0.99;

    private static readonly double InitialLoss = Math.Log(10);
    private const double TestLossFloor = 0.03;
    private const double TrainLossFloor = 0.02;

    /// <summary>CASE1's progress per iteration: one unit every ten iterations.</summary>
    private const double ReferenceRate = 0.1;

    private const double Megabyte = 1024 * 1024;

    // Noise channels: each figure draws its own independent value for a given (seed, iteration).
    private const int SeedSpeed = 0, TrainLossNoise = 1, TrainAccuracyNoise = 2, TestLossNoise = 3, TestAccuracyNoise = 4;

    private readonly int batchSize;
    private readonly int seed;
    private readonly double rate;
    private readonly double batchNoise;

    public SyntheticCurve(int batchSize, double baseLr, int seed)
    {
        this.batchSize = batchSize;
        this.seed = seed;
        double seedSpeed = 1 + 0.05 * Noise(seed, 0, SeedSpeed);
        rate = ReferenceRate * (baseLr / 0.01) * Math.Sqrt(batchSize / 64.0) * seedSpeed;
        batchNoise = Math.Sqrt(64.0 / batchSize);
    }

    /// <summary>
    /// Modelled, not measured (nothing is allocated): 40 MB of model, solver and runtime plus 0.5 MB
    /// of activations per example in the batch, so out-of-memory policies have a figure to work with.
    /// </summary>
    public long PeakMemoryBytes => (long)(40 * Megabyte + batchSize * 0.5 * Megabyte);

    /// <summary>The loss and correct count of the batch trained at <paramref name="iteration"/>, under the weights before its update.</summary>
    public (double Loss, long Correct) TrainBatch(int iteration)
    {
        double remaining = Remaining(iteration);
        double loss = (TrainLossFloor + (InitialLoss - TrainLossFloor) * remaining)
                      * Math.Exp(Math.Min(0.5, 0.15 * batchNoise) * Noise(seed, iteration, TrainLossNoise));
        double accuracy = Math.Clamp(
            TrainPlateau - (TrainPlateau - Chance) * remaining + 0.05 * batchNoise * Noise(seed, iteration, TrainAccuracyNoise),
            0,
            1);
        return (loss, (long)Math.Round(accuracy * batchSize));
    }

    /// <summary>Test loss and accuracy over the whole (imaginary) test split at <paramref name="iteration"/>.</summary>
    public (double Loss, double Accuracy) Test(int iteration)
    {
        double remaining = Remaining(iteration);
        double loss = (TestLossFloor + (InitialLoss - TestLossFloor) * remaining) * Math.Exp(0.03 * Noise(seed, iteration, TestLossNoise));
        double accuracy = Math.Clamp(Plateau - (Plateau - Chance) * remaining + 0.004 * Noise(seed, iteration, TestAccuracyNoise), 0, 1);
        return (loss, accuracy);
    }

    /// <summary>The fraction of the way from chance to the plateau still to go.</summary>
    private double Remaining(int iteration) => 1 / (1 + iteration * rate);

    /// <summary>A uniform value in [−1, 1) determined by its arguments (SplitMix64's finaliser, chained).</summary>
    private static double Noise(int seed, int iteration, int channel)
    {
        ulong hash = Mix((ulong)(uint)seed);
        hash = Mix(hash ^ (uint)iteration);
        hash = Mix(hash ^ (uint)channel);
        return (hash >> 11) * (2.0 / (1UL << 53)) - 1;
    }

    private static ulong Mix(ulong value)
    {
        value += 0x9E3779B97F4A7C15UL;
        value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9UL;
        value = (value ^ (value >> 27)) * 0x94D049BB133111EBUL;
        return value ^ (value >> 31);
    }
}
