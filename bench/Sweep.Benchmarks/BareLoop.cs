using System.Diagnostics;
using Sweep.GpuWorker.Data;
using Sweep.GpuWorker.Training;
using Sweep.Protocol.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Sweep.Benchmarks;

/// <summary>
/// The yardstick for the trainer benchmark: LeNet with Caffe's update on the same data, batch,
/// schedule and test cadence, in a plain loop (no actors, no journal, no metrics beyond the tests),
/// on the same kernels (<see cref="TorchKernels"/>). Returns its time and its test points, so the
/// benchmark can check it computed what the trainer computes before it compares times.
/// </summary>
internal static class BareLoop
{
    /// <returns>Seconds, and (iteration, test loss, test accuracy) at 0, every test interval and the end.</returns>
    /// <param name="channelsLast">The network's layout (<see cref="LeNet.ChannelsLast"/>; the trainer's is on).</param>
    public static (double Seconds, List<(int Iteration, double TestLoss, double TestAccuracy)> Tests) Run(TrialSpec spec, MnistData data, int threads, bool channelsLast = true)
    {
        TorchKernels.EnsureApplied();
        set_num_threads(threads);
        var clock = Stopwatch.StartNew();
        using var model = new LeNet { ChannelsLast = channelsLast };
        using (var generator = new Generator((ulong)spec.Seed))
            model.InitializeLikeCaffe(generator);
        using var solver = new CaffeSgd(model.named_parameters().Select(p => (p.name, (Tensor)p.parameter, LeNet.LearningRateMultiplier(p.name))), spec.Solver.Momentum, spec.Solver.WeightDecay);
        using var trainImages = tensor(data.Train.Pixels, [data.Train.Count, 1, 28, 28], ScalarType.Byte).to(ScalarType.Float32).mul_(1.0 / 256);
        using var trainLabels = tensor(data.Train.Labels, ScalarType.Byte).to(ScalarType.Int64);
        using var testImages = tensor(data.Test.Pixels, [data.Test.Count, 1, 28, 28], ScalarType.Byte).to(ScalarType.Float32).mul_(1.0 / 256);
        using var testLabels = tensor(data.Test.Labels, ScalarType.Byte).to(ScalarType.Int64);
        var sampler = new EpochSampler(data.Train.Count, spec.Seed);

        var tests = new List<(int, double, double)> { Test(0) };
        for (int iteration = 0; iteration < spec.MaxIter; iteration++)
        {
            using var scope = NewDisposeScope();
            var index = tensor(sampler.Next(spec.BatchSize));
            var loss = nn.functional.cross_entropy(model.call(trainImages.index_select(0, index)), trainLabels.index_select(0, index));
            solver.ZeroGrad();
            loss.backward();
            solver.Step(spec.Solver.LearningRateAt(spec.BaseLr, iteration));
            if ((iteration + 1) % spec.TestInterval == 0 || iteration + 1 == spec.MaxIter) tests.Add(Test(iteration + 1));
        }
        return (clock.Elapsed.TotalSeconds, tests);

        (int, double, double) Test(int iteration)
        {
            var (loss, accuracy) = Trainer.Evaluate(model, testImages, testLabels, spec.TestBatchSize);
            return (iteration, loss, accuracy);
        }
    }
}
