using System.Diagnostics;
using Sweep.GpuWorker.Data;
using Sweep.GpuWorker.Training;
using Sweep.Protocol.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Sweep.Benchmarks;

/// <summary>
/// The yardstick for the trainer benchmark: LeNet with Caffe's update on the same data, batch,
/// schedule and test cadence, in a plain loop (no actors, no journal, no metrics beyond the tests).
/// </summary>
internal static class BareLoop
{
    public static double Run(TrialSpec spec, MnistData data, int threads)
    {
        set_num_threads(threads);
        var clock = Stopwatch.StartNew();
        using var model = new LeNet();
        using (var generator = new Generator((ulong)spec.Seed))
            model.InitializeLikeCaffe(generator);
        using var solver = new CaffeSgd(model.named_parameters().Select(p => (p.name, (Tensor)p.parameter, LeNet.LearningRateMultiplier(p.name))), spec.Solver.Momentum, spec.Solver.WeightDecay);
        using var trainImages = tensor(data.Train.Pixels, [data.Train.Count, 1, 28, 28], ScalarType.Byte).to(ScalarType.Float32).mul_(1.0 / 256);
        using var trainLabels = tensor(data.Train.Labels, ScalarType.Byte).to(ScalarType.Int64);
        using var testImages = tensor(data.Test.Pixels, [data.Test.Count, 1, 28, 28], ScalarType.Byte).to(ScalarType.Float32).mul_(1.0 / 256);
        using var testLabels = tensor(data.Test.Labels, ScalarType.Byte).to(ScalarType.Int64);
        var sampler = new EpochSampler(data.Train.Count, spec.Seed);

        Test(model, testImages, testLabels, spec.TestBatchSize);
        for (int iteration = 0; iteration < spec.MaxIter; iteration++)
        {
            using var scope = NewDisposeScope();
            var index = tensor(sampler.Next(spec.BatchSize));
            var loss = nn.functional.cross_entropy(model.call(trainImages.index_select(0, index)), trainLabels.index_select(0, index));
            solver.ZeroGrad();
            loss.backward();
            solver.Step(spec.Solver.LearningRateAt(spec.BaseLr, iteration));
            if ((iteration + 1) % spec.TestInterval == 0) Test(model, testImages, testLabels, spec.TestBatchSize);
        }
        return clock.Elapsed.TotalSeconds;
    }

    private static void Test(LeNet model, Tensor images, Tensor labels, int batch)
    {
        using var _ = no_grad();
        for (long start = 0; start < images.shape[0]; start += batch)
        {
            using var scope = NewDisposeScope();
            long length = Math.Min(batch, images.shape[0] - start);
            model.call(images.narrow(0, start, length)).argmax(1).eq(labels.narrow(0, start, length)).sum().item<long>();
        }
    }
}
