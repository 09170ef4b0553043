using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sweep.GpuWorker.Data;
using Sweep.GpuWorker.SelfTest;
using Sweep.GpuWorker.Training;
using Sweep.Protocol.Training;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.Tests;

/// <summary>
/// The numbers LibTorch computes for LeNet, judged against the independent float64 reference
/// (<see cref="LeNetReference"/>, itself tested against hand computations and finite differences):
/// the kernel choice, every layer forward and backward on real MNIST batches, and the self-test.
/// </summary>
[Collection(TorchCollection.Name)]
public sealed unsafe class NumericsTests : IDisposable
{
    /// <summary>What the issue asks of every layer on real batches; float32 kernels land near 1e-6.</summary>
    private const double Tolerance = 1e-5;

    private static readonly Lazy<MnistData> Embedded = new(() => MnistData.Load(new DatasetSpec(MnistData.EmbeddedPath)));
    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void The_kernels_are_chosen_once_and_read_back_from_libtorch()
    {
        var settings = TorchKernels.EnsureApplied();

        Assert.False(settings.OneDnn);
        Assert.False(settings.Nnpack);
        Assert.True(settings.DeterministicCuDnn);
        Assert.False(settings.BenchmarkCuDnn);
        Assert.Same(settings, TorchKernels.EnsureApplied());
        Assert.Equal("oneDNN off, NNPACK off, cuDNN deterministic on, cuDNN benchmark off", settings.ToString());
    }

    [Fact]
    public void A_libtorch_without_the_switch_is_refused_by_name()
    {
        TorchKernels.EnsureApplied();
        var library = NativeLibrary.Load(TorchKernels.Library);

        var error = Assert.Throws<TorchKernelsException>(() => TorchKernels.Apply(symbol =>
            symbol.Contains("setUserEnabledMkldnn", StringComparison.Ordinal) ? IntPtr.Zero : NativeLibrary.GetExport(library, symbol)));

        Assert.Contains("at::Context::setUserEnabledMkldnn(bool)", error.Message);
        Assert.Contains("refusing to train", error.Message);
    }

    [Fact]
    public void A_switch_that_does_not_take_effect_is_refused()
    {
        TorchKernels.EnsureApplied();
        var library = NativeLibrary.Load(TorchKernels.Library);
        delegate* unmanaged<IntPtr, byte> stuckOn = &AlwaysTrue;

        var error = Assert.Throws<TorchKernelsException>(() => TorchKernels.Apply(symbol =>
            symbol == "_ZNK2at7Context17userEnabledMkldnnEv" ? (IntPtr)stuckOn : NativeLibrary.GetExport(library, symbol)));

        Assert.Contains("ignored at::Context::setUserEnabledMkldnn(false)", error.Message);
        TorchKernels.Apply(symbol => NativeLibrary.GetExport(library, symbol));
    }

    [UnmanagedCallersOnly]
    private static byte AlwaysTrue(IntPtr context) => 1;

    [Theory]
    [InlineData(16, 1, 11)]
    [InlineData(32, 2, 12)]
    [InlineData(64, 1, 13)]
    [InlineData(128, 2, 14)]
    public void Every_layer_forward_and_backward_matches_float64_on_a_real_training_batch(int batch, int threads, int seed)
    {
        set_num_threads(threads);
        var (pixels, labels) = TrainingBatch(batch, seed);

        var checks = KnownAnswerTest.Compare(CPU, pixels, labels);

        AssertAllWithin(checks, Tolerance);
        Assert.Equal(31, checks.Count);
    }

    [Fact]
    public void Every_layer_matches_float64_on_a_test_batch_of_256_and_with_trained_weights()
    {
        set_num_threads(TorchCollection.Threads);
        var (pixels, labels) = KnownAnswerTest.Batch(Embedded.Value.Test, Enumerable.Range(0, 256).Select(i => (long)i).ToArray());
        // Weights after 60 iterations of CASE1: larger and sparser activations than the initial fill.
        var checkpoint = temp.File("trained.ckpt");
        var spec = new TrialSpec(64, 128, 0.01, 80, 60, 1, new SolverSpec(), new DatasetSpec(MnistData.EmbeddedPath));
        Trainer.Run(spec, Embedded.Value, new TrainingOptions(TorchCollection.Threads, "cpu", checkpoint));
        var trained = TrainerCheckpoint.Load(checkpoint);
        Assert.Equal(60, trained.Iteration);

        var checks = KnownAnswerTest.Compare(CPU, pixels, labels, weights: model =>
        {
            foreach (var (name, parameter) in model.named_parameters()) trained.RestoreInto("model." + name, parameter);
        });

        AssertAllWithin(checks, Tolerance);
        Assert.Contains(checks, c => c is { Pass: "inference", Layer: "conv2" });
    }

    [Fact]
    public void The_self_test_passes_here_and_reports_every_layer_in_well_under_a_second_of_work()
    {
        var report = KnownAnswerTest.Run("cpu", 1);

        Assert.True(report.Passed, report.Summary);
        Assert.Null(report.Error);
        Assert.Equal("cpu", report.Device);
        foreach (var layer in LeNet.LayerNames)
        {
            Assert.Contains(report.Checks, c => c.Pass == "training" && c.Layer == layer);
            Assert.Contains(report.Checks, c => c.Pass == "inference" && c.Layer == layer);
        }
        Assert.Contains(report.Checks, c => c is { Pass: "backward", Layer: "conv2", Quantity: "weight gradient" });
        Assert.Contains(report.Checks, c => c.Pass == "update");
        Assert.All(report.Checks, c => Assert.InRange(c.RelativeError, 0, 1e-5));
        Assert.StartsWith("self-test passed on cpu (1 thread): 31 layer checks", report.Summary);
        Assert.True(report.ToHealth().Healthy);
    }

    [Fact]
    public void A_wrong_layer_fails_the_self_test_and_the_summary_names_it()
    {
        var report = KnownAnswerTest.Run("cpu", 1, new SelfTestFault("conv2", "conv2"));

        Assert.False(report.Passed);
        var failed = report.Checks.Where(c => !c.Passed).ToList();
        Assert.Equal(["conv2", "conv2"], failed.Select(c => c.Layer));
        Assert.Equal(["training", "inference"], failed.Select(c => c.Pass));
        Assert.All(failed, c => Assert.InRange(c.RelativeError, 0.05, 1.0));
        Assert.StartsWith("self-test failed on cpu (1 thread): training conv2 output off by", report.Summary);
        Assert.False(report.ToHealth().Healthy);
        Assert.Equal(report.Summary, report.ToHealth().Summary);
        Assert.EndsWith("[injected on purpose by SWEEP_SELFTEST_FAULT=conv2]", report.Summary);
    }

    [Fact]
    public void A_device_that_is_not_there_makes_a_report_that_says_so_instead_of_throwing()
    {
        var report = KnownAnswerTest.Run("cuda:7", 1);

        Assert.False(report.Passed);
        Assert.Empty(report.Checks);
        Assert.Contains("cuda:7", report.Summary);
        Assert.StartsWith("self-test could not run on cuda:7", report.Summary);
        // LibTorch would abort the process on a thread count below 1: refused before it is asked.
        Assert.Equal("self-test could not run on cpu (0 threads): threads must be positive, got 0", KnownAnswerTest.Run("cpu", 0).Summary);
    }

    [Theory]
    [InlineData(null, "host/cpu-1", null)]
    [InlineData("conv2", "host/cpu-1", "conv2")]
    [InlineData("conv2@cpu-2", "host/cpu-1", null)]
    [InlineData("conv2@cpu-2", "host/cpu-2", "conv2")]
    [InlineData("ip1@cpu-2", null, null)]
    [InlineData(" loss ", null, "loss")]
    [InlineData("update", "host/cpu-1", "update")]
    public void The_fault_variable_picks_its_slot(string? value, string? workerId, string? expectedLayer)
    {
        var before = Environment.GetEnvironmentVariable(SelfTestFault.Variable);
        try
        {
            Environment.SetEnvironmentVariable(SelfTestFault.Variable, value);
            Assert.Equal(expectedLayer, SelfTestFault.FromEnvironment(workerId)?.Layer);
        }
        finally
        {
            Environment.SetEnvironmentVariable(SelfTestFault.Variable, before);
        }
    }

    [Theory]
    [InlineData("bogus", "'bogus' is nothing the self-test checks")]
    [InlineData("conv2@", "nothing after '@'")]
    public void A_fault_variable_that_names_no_layer_is_refused_by_name(string value, string says)
    {
        var before = Environment.GetEnvironmentVariable(SelfTestFault.Variable);
        try
        {
            Environment.SetEnvironmentVariable(SelfTestFault.Variable, value);
            var error = Assert.Throws<Sweep.Protocol.InvalidInputException>(() => SelfTestFault.FromEnvironment("host/cpu-1"));
            Assert.StartsWith($"SWEEP_SELFTEST_FAULT={value}: ", error.Message);
            Assert.Contains(says, error.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(SelfTestFault.Variable, before);
        }
    }

    /// <summary>A real mini-batch as the trainer draws it (the sampler's permutation for <paramref name="seed"/>).</summary>
    private static (float[] Pixels, int[] Labels) TrainingBatch(int batch, int seed) =>
        KnownAnswerTest.Batch(Embedded.Value.Train, new EpochSampler(Embedded.Value.Train.Count, seed).Next(batch));

    private static void AssertAllWithin(IReadOnlyList<LayerCheck> checks, double tolerance)
    {
        var failed = checks.Where(c => !(c.RelativeError <= tolerance)).ToList();
        Assert.True(failed.Count == 0, "beyond " + tolerance + ": " + string.Join("; ", failed));
    }
}
