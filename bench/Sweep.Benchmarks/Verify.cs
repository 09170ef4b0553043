using System.Collections.Concurrent;
using Sweep.GpuWorker.Data;
using Sweep.GpuWorker.Training;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Benchmarks;

/// <summary>A benchmark's runs did not compute what they should have: its time means nothing.</summary>
internal sealed class VerificationException(string message) : Exception(message);

/// <summary>
/// Checks a benchmark makes before it reports a time: that the trials it timed computed exactly
/// what the same trials compute alone, and ended as they should. (A benchmark once timed runs that
/// ended early on false NaNs from a faulty convolution.)
/// </summary>
internal static class Verify
{
    private static readonly ConcurrentDictionary<(TrialSpec, int), IReadOnlyList<TrialMetrics>> Solos = new();

    public static void That(bool holds, string what)
    {
        if (!holds) throw new VerificationException($"expected {what}");
    }

    /// <summary>What a test point computed, without its wall-clock time and memory.</summary>
    public static List<(int, double, double, double, double, double)> Computed(IEnumerable<TrialMetrics> metrics) =>
        metrics.Select(m => (m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate)).ToList();

    public static void Same<T>(IReadOnlyList<T> expected, IReadOnlyList<T> actual, string what)
    {
        if (expected.SequenceEqual(actual)) return;
        int at = Enumerable.Range(0, Math.Min(expected.Count, actual.Count)).FirstOrDefault(i => !Equals(expected[i], actual[i]), Math.Min(expected.Count, actual.Count));
        throw new VerificationException($"{what} to equal the trial alone, but they differ at point {at}: " +
            $"{(at < actual.Count ? actual[at]!.ToString() : "(missing)")} against {(at < expected.Count ? expected[at]!.ToString() : "(missing)")}");
    }

    /// <summary>
    /// Every LeNet trial of <paramref name="run"/> gave the test points of the same trial trained
    /// alone with <paramref name="threads"/> threads (a trial the sweep stopped as diverged: a prefix
    /// of them), and none failed.
    /// </summary>
    public static void SoloIdentical(SweepDefinition definition, global::Benchmarks.SweepRunResult run, int threads, string layout)
    {
        That(run.Final.Trials.All(t => t.State is TrialState.Completed or TrialState.Diverged), $"no trial to fail in the {layout} layout ({string.Join(", ", run.Final.Trials.Where(t => t.State == TrialState.Failed).Select(t => t.Definition.Name + ": " + t.Error))})");
        var data = MnistData.Load(definition.Trials[0].Spec.Dataset);
        foreach (var trial in definition.Trials)
        {
            var solo = Solos.GetOrAdd((trial.Spec, threads), key => Threads.OnOwnThread(() => Trainer.Run(key.Item1, data, new TrainingOptions(key.Item2)).Metrics));
            var points = Computed(run.Progress[trial.Id]);
            var expected = Computed(solo);
            bool diverged = run.Final.Trials.Single(t => t.Definition.Id == trial.Id).State == TrialState.Diverged;
            Same(diverged ? expected.Take(points.Count).ToList() : expected, points, $"{trial.Name}'s test points in the {layout} layout");
        }
    }

}

/// <summary>
/// LibTorch work in a benchmark runs on a thread of its own, as a worker runs it: LibTorch's OpenMP
/// keeps a thread team per calling thread, and a team left alive by another thread oversubscribes the cores.
/// </summary>
internal static class Threads
{
    /// <summary>Runs <paramref name="work"/> on a new thread and returns its result (or rethrows its exception).</summary>
    public static T OnOwnThread<T>(Func<T> work)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        return result;
    }
}

/// <summary>
/// LeNet's arithmetic, counted from its shapes (examples/mnist/lenet_train_test.prototxt), and this
/// machine's peak from its instruction set: the limit a trial's time is held against.
/// </summary>
internal static class LeNetArithmetic
{
    /// <summary>Multiply-adds of one image's forward pass: conv1 20·24·24·25, conv2 50·8·8·(20·25), ip1 500·800, ip2 10·500.</summary>
    public const long ForwardMacs = 20L * 24 * 24 * 25 + 50L * 8 * 8 * 20 * 25 + 500L * 800 + 10L * 500;

    /// <summary>
    /// Multiply-adds of one image's backward pass: every layer's weight gradient (as many as its
    /// forward) and the input gradients of conv2, ip1 and ip2 (conv1's input needs none).
    /// </summary>
    public const long BackwardMacs = ForwardMacs + 50L * 8 * 8 * 20 * 25 + 500L * 800 + 10L * 500;

    /// <summary>
    /// Floating-point operations of a whole trial (a multiply-add is two): training batches forward
    /// and backward, the iteration-0 forward of the first batch, and a forward of the whole test
    /// split at 0, every test interval and the end. Pooling, ReLU, softmax and the update are a
    /// rounding error beside them. CASE1 on the embedded data: 0.945 TFLOP.
    /// </summary>
    public static double Flop(TrialSpec spec)
    {
        int tests = spec.MaxIter / spec.TestInterval + 1 + (spec.MaxIter % spec.TestInterval == 0 ? 0 : 1);
        long testImages = spec.Dataset.TestCount ?? MnistData.Load(spec.Dataset).Test.Count;
        double macs = (double)spec.MaxIter * spec.BatchSize * (ForwardMacs + BackwardMacs) + spec.BatchSize * (double)ForwardMacs + tests * (double)testImages * ForwardMacs;
        return 2 * macs;
    }

    /// <summary>
    /// Peak float32 operations per second of <paramref name="cores"/> cores: frequency × FMA units ×
    /// lanes × 2. Lanes from the instruction set (AVX-512: 16, AVX2: 8); two FMA units per core (Intel
    /// Xeon Scalable, and AMD Zen 4/5 on 256-bit halves); the frequency /proc/cpuinfo reports (a VM
    /// shows the base clock; turbo would raise the limit).
    /// </summary>
    public static double PeakFlopPerSecond(int cores) => cores * FrequencyHz() * 2 * Lanes() * 2;

    public static string PeakAssumptions(int cores) =>
        $"{cores} core(s) x {FrequencyHz() / 1e9:0.###} GHz x 2 FMA units x {Lanes()} float32 lanes ({(Lanes() == 16 ? "AVX-512" : Lanes() == 8 ? "AVX2" : "SSE")}) x 2";

    private static int Lanes() =>
        System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? 16 : System.Runtime.Intrinsics.X86.Avx2.IsSupported ? 8 : 4;

    private static double FrequencyHz()
    {
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("cpu MHz", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line.Split(':')[1].Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1e6;
    }
}
