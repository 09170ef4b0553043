using System.Diagnostics;
using System.Globalization;
using Sweep.GpuWorker.Data;
using Sweep.GpuWorker.Training;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.SelfTest;

/// <summary>One comparison of the self-test: a layer's output or gradient against float64.</summary>
/// <param name="Pass"><c>training</c> (forward with autograd), <c>backward</c>, <c>inference</c> (forward without autograd, as the test split runs) or <c>update</c> (Caffe's SGD step).</param>
/// <param name="Layer">conv1, pool1, conv2, pool2, ip1, relu1, ip2, loss, or all parameters for the update.</param>
/// <param name="Quantity">output, input gradient, weight gradient, bias gradient, or parameters.</param>
/// <param name="RelativeError">max |actual − reference| / max |reference|; +∞ when the device produced NaN or infinity.</param>
/// <param name="Tolerance">The largest error that passes.</param>
public sealed record LayerCheck(string Pass, string Layer, string Quantity, double RelativeError, double Tolerance)
{
    /// <summary>Within tolerance (false for NaN, which compares false with everything).</summary>
    public bool Passed => RelativeError <= Tolerance;

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Pass} {Layer} {Quantity}: relative error {RelativeError:0.0e+00} (tolerance {Tolerance:0e+00}){(Passed ? "" : " FAILED")}");
}

/// <summary>What the self-test found on one device with one thread count.</summary>
/// <param name="Device">The device it ran on (<c>cpu</c>, <c>cuda:0</c>, …; as given when it could not run).</param>
/// <param name="Threads">LibTorch intra-op threads it ran with.</param>
/// <param name="Kernels">The kernel settings in force (null when they could not be applied).</param>
/// <param name="Checks">Every comparison, in the order of the network.</param>
/// <param name="Seconds">Wall-clock time of the whole test, reference included.</param>
/// <param name="Error">Why the test could not run at all (no LibTorch, no such device, …), or null.</param>
/// <param name="Injected">The drill fault that was applied (<see cref="SelfTestFault"/>), or null.</param>
public sealed record SelfTestReport(string Device, int Threads, KernelSettings? Kernels, IReadOnlyList<LayerCheck> Checks, double Seconds, string? Error, SelfTestFault? Injected = null)
{
    /// <summary>The test ran and every check passed.</summary>
    public bool Passed => Error is null && Checks.Count > 0 && Checks.All(c => c.Passed);

    /// <summary>The check furthest from its tolerance (the first failure, when one failed).</summary>
    public LayerCheck? Worst => Checks.OrderByDescending(c => c.RelativeError / c.Tolerance).FirstOrDefault();

    /// <summary>One line: passed with the worst error, or the first failing layer and how far off it was.</summary>
    public string Summary
    {
        get
        {
            var where = $"{Device} ({Threads} thread{(Threads == 1 ? "" : "s")})";
            if (Error is not null) return $"self-test could not run on {where}: {Error}";
            var failed = Checks.Where(c => !c.Passed).ToList();
            if (failed.Count == 0)
            {
                var worst = Worst!;
                return string.Create(CultureInfo.InvariantCulture,
                    $"self-test passed on {where}: {Checks.Count} layer checks against float64, worst relative error {worst.RelativeError:0.0e+00} ({worst.Pass} {worst.Layer} {worst.Quantity}), {Seconds:0.00} s");
            }
            var first = failed[0];
            var more = failed.Count > 1 ? $", and {failed.Count - 1} more check(s)" : "";
            var drill = Injected is { } fault ? $" [injected on purpose by {SelfTestFault.Variable}={fault.Setting}]" : "";
            return string.Create(CultureInfo.InvariantCulture,
                $"self-test failed on {where}: {first.Pass} {first.Layer} {first.Quantity} off by {first.RelativeError:0.0e+00} relative to float64 (tolerance {first.Tolerance:0e+00}){more}{drill}");
        }
    }

    /// <summary>What a worker slot registers with.</summary>
    public SlotHealth ToHealth() => new(Passed, Summary);
}

/// <summary>
/// A deliberate error for tests and drills: the named layer's output (the loss, or the updated
/// parameters) is reported off by 0.5 in one element, as the faulty oneDNN convolution was off by
/// 0.43; for conv2 that is about 0.2 relative to the layer's largest value, and both its training
/// and its inference checks fail. Set by the environment variable <c>SWEEP_SELFTEST_FAULT=LAYER</c>
/// (every slot of the process, and <c>sweep train</c> and <c>sweep selftest</c>) or
/// <c>LAYER@SLOT</c> (only the worker slot whose id ends in <c>/SLOT</c>, e.g. <c>conv2@cpu-2</c>).
/// Every summary of a report it touched says so.
/// </summary>
/// <param name="Layer">conv1, pool1, conv2, pool2, ip1, relu1, ip2, loss or update.</param>
/// <param name="Setting">The variable's value, for the reports.</param>
public sealed record SelfTestFault(string Layer, string Setting)
{
    /// <summary>The environment variable that asks for the fault.</summary>
    public const string Variable = "SWEEP_SELFTEST_FAULT";

    /// <summary>What the variable may name: LeNet's layers, its loss, and the update.</summary>
    public static IReadOnlyList<string> Targets { get; } = [.. LeNet.LayerNames, "loss", "update"];

    /// <summary>
    /// The fault the environment asks for on the worker slot <paramref name="workerId"/>, or, with
    /// null, for a process that is no slot (<c>sweep train</c>, <c>sweep selftest</c>: only a fault
    /// without @SLOT applies there).
    /// </summary>
    /// <exception cref="Protocol.InvalidInputException">The variable names nothing the self-test checks, or an empty slot.</exception>
    public static SelfTestFault? FromEnvironment(string? workerId = null)
    {
        var value = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(value)) return null;
        var parts = value.Trim().Split('@', 2);
        if (!Targets.Contains(parts[0]))
            throw new Protocol.InvalidInputException($"{Variable}={value}: '{parts[0]}' is nothing the self-test checks; expected one of {string.Join(", ", Targets)}, optionally @SLOT (e.g. conv2@cpu-2)");
        if (parts.Length == 2 && parts[1].Length == 0)
            throw new Protocol.InvalidInputException($"{Variable}={value}: nothing after '@'; expected a slot such as cpu-2");
        if (parts.Length == 2 && (workerId is null || !workerId.EndsWith("/" + parts[1], StringComparison.Ordinal))) return null;
        return new SelfTestFault(parts[0], value.Trim());
    }
}

/// <summary>
/// The known-answer self-test of a device: Caffe's LeNet with fixed weights (Caffe's xavier fill,
/// seed 1) on 16 fixed real MNIST training images, forward with and without autograd, backward, and
/// one Caffe SGD update, each layer compared with an independent float64 computation
/// (<see cref="LeNetReference"/>) fed with the device's own inputs to that layer, so every kernel is
/// judged alone. float32 kernels land within about 1e-6 of float64 here; the tolerance, 1e-4, is a
/// hundred times that and far below the faults it exists for (0.17 relative for the faulty oneDNN
/// convolution). Takes a fraction of a second on a CPU core.
/// </summary>
public static class KnownAnswerTest
{
    /// <summary>Relative error above which a check fails.</summary>
    public const double Tolerance = 1e-4;

    /// <summary>Images in the test batch.</summary>
    public const int Images = 16;

    private const double LearningRate = 0.01;

    /// <summary>Runs the test on the calling thread; never throws for a device problem (the report says it).</summary>
    /// <param name="device"><c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</param>
    /// <param name="threads">LibTorch intra-op threads, as the slot trains with.</param>
    /// <param name="fault">A deliberate error (tests and drills), or null.</param>
    public static SelfTestReport Run(string device, int threads, SelfTestFault? fault = null)
    {
        var clock = Stopwatch.StartNew();
        KernelSettings? kernels = null;
        // LibTorch aborts the whole process on a thread count below 1 rather than throwing, and exhausts it on a huge one.
        if (TrainingOptions.ThreadsProblem(threads, "threads") is { } problem) return new SelfTestReport(device, threads, null, [], 0, problem);
        try
        {
            kernels = TorchKernels.EnsureApplied();
            set_num_threads(threads);
            var resolved = TorchDevices.Resolve(device);
            var (pixels, labels) = Inputs();
            var checks = Compare(resolved, pixels, labels, fault);
            return new SelfTestReport(resolved.ToString(), threads, kernels, checks, clock.Elapsed.TotalSeconds, null, fault);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new SelfTestReport(device, threads, kernels, [], clock.Elapsed.TotalSeconds, e.Message.Split('\n')[0]);
        }
    }

    /// <summary>The first <see cref="Images"/> training images of the embedded set, and their labels.</summary>
    internal static (float[] Pixels, int[] Labels) Inputs() => Batch(MnistData.Shared(new DatasetSpec(MnistData.EmbeddedPath)).Train, Enumerable.Range(0, Images).Select(i => (long)i).ToArray());

    /// <summary>The images at <paramref name="indices"/> of <paramref name="split"/>, scaled by 1/256 as the trainer does ([N × 784]), and their labels.</summary>
    internal static (float[] Pixels, int[] Labels) Batch(MnistSplit split, IReadOnlyList<long> indices)
    {
        var pixels = new float[indices.Count * MnistSplit.PixelsPerImage];
        for (int i = 0; i < indices.Count; i++)
        {
            for (int p = 0; p < MnistSplit.PixelsPerImage; p++)
                pixels[i * MnistSplit.PixelsPerImage + p] = split.Pixels[indices[i] * MnistSplit.PixelsPerImage + p] / 256f;
        }
        return (pixels, indices.Select(i => (int)split.Labels[i]).ToArray());
    }

    /// <summary>
    /// Every layer check on one batch: <paramref name="pixels"/> [N × 784] scaled by 1/256 and their
    /// <paramref name="labelValues"/>, with fresh Caffe-initialised weights (seed 1) on <paramref name="device"/>.
    /// </summary>
    /// <param name="weights">Sets the weights instead (e.g. from a trained checkpoint); null: Caffe's fill with seed 1.</param>
    /// <param name="channelsLast">The network's layout (<see cref="LeNet.ChannelsLast"/>): off only to measure the layouts against each other.</param>
    internal static List<LayerCheck> Compare(Device device, float[] pixels, int[] labelValues, SelfTestFault? fault = null, Action<LeNet>? weights = null, bool channelsLast = true)
    {
        int n = labelValues.Length;
        if (pixels.Length != n * MnistSplit.PixelsPerImage) throw new ArgumentException($"{pixels.Length} pixels for {n} images", nameof(pixels));
        var checks = new List<LayerCheck>();
        using var scope = NewDisposeScope();
        using var model = new LeNet { ChannelsLast = channelsLast };
        if (weights is not null)
        {
            weights(model);
        }
        else
        {
            using var generator = new Generator(1);
            model.InitializeLikeCaffe(generator);
        }
        model.to(device);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var input = tensor(pixels, [n, 1, MnistSplit.Side, MnistSplit.Side]).to(device);
        var labels = tensor(labelValues.Select(l => (long)l).ToArray()).to(device);

        // Training: forward with autograd, every layer's output kept with its gradient.
        var trained = new List<(string Layer, Tensor Output)>();
        var logits = model.Trace(input, trained);
        foreach (var (_, output) in trained) output.retain_grad();
        var loss = nn.functional.cross_entropy(logits, labels);
        var outputs = trained.ToDictionary(t => t.Layer, t => t.Output);
        ForwardChecks("training", outputs, input, parameters, fault, checks);
        var lossReference = LeNetReference.SoftmaxCrossEntropy(Doubles(outputs["ip2"]), n, 10, labelValues);
        checks.Add(new LayerCheck("training", "loss", "output", LeNetReference.RelativeError([loss.item<float>() + (fault?.Layer == "loss" ? 0.5 : 0)], [lossReference.Loss]), Tolerance));

        foreach (var (_, parameter) in parameters) parameter.grad?.zero_();
        loss.backward();
        BackwardChecks(outputs, input, parameters, lossReference.GradLogits, checks);

        // Inference: the same forward without autograd, as the test split runs (kernels may differ).
        using (no_grad())
        {
            var inferred = new List<(string Layer, Tensor Output)>();
            model.Trace(input, inferred);
            ForwardChecks("inference", inferred.ToDictionary(t => t.Layer, t => t.Output), input, parameters, fault, checks);
        }

        checks.Add(UpdateCheck(parameters, fault));
        return checks;
    }

    private static void ForwardChecks(string pass, Dictionary<string, Tensor> outputs, Tensor input, Dictionary<string, Tensor> p, SelfTestFault? fault, List<LayerCheck> checks)
    {
        int n = (int)input.shape[0];
        void Check(string layer, Tensor actual, double[] reference)
        {
            var values = Floats(actual);
            if (fault?.Layer == layer) values[0] += 0.5f;
            checks.Add(new LayerCheck(pass, layer, "output", LeNetReference.RelativeError(values, reference), Tolerance));
        }

        Check("conv1", outputs["conv1"], LeNetReference.Conv2dForward(Doubles(input), n, 1, 28, 28, Doubles(p["conv1.weight"]), Doubles(p["conv1.bias"]), 20, 5));
        Check("pool1", outputs["pool1"], LeNetReference.MaxPool2x2Forward(Doubles(outputs["conv1"]), n, 20, 24, 24).Output);
        Check("conv2", outputs["conv2"], LeNetReference.Conv2dForward(Doubles(outputs["pool1"]), n, 20, 12, 12, Doubles(p["conv2.weight"]), Doubles(p["conv2.bias"]), 50, 5));
        Check("pool2", outputs["pool2"], LeNetReference.MaxPool2x2Forward(Doubles(outputs["conv2"]), n, 50, 8, 8).Output);
        Check("ip1", outputs["ip1"], LeNetReference.LinearForward(Doubles(outputs["pool2"]), n, 800, Doubles(p["ip1.weight"]), Doubles(p["ip1.bias"]), 500));
        Check("relu1", outputs["relu1"], LeNetReference.ReluForward(Doubles(outputs["ip1"])));
        Check("ip2", outputs["ip2"], LeNetReference.LinearForward(Doubles(outputs["relu1"]), n, 500, Doubles(p["ip2.weight"]), Doubles(p["ip2.bias"]), 10));
    }

    private static void BackwardChecks(Dictionary<string, Tensor> o, Tensor input, Dictionary<string, Tensor> p, double[] gradLogits, List<LayerCheck> checks)
    {
        int n = (int)input.shape[0];
        void Check(string layer, string quantity, Tensor? actual, double[]? reference)
        {
            double error = actual is null || reference is null ? double.PositiveInfinity : LeNetReference.RelativeError(Floats(actual), reference);
            checks.Add(new LayerCheck("backward", layer, quantity, error, Tolerance));
        }

        Check("loss", "input gradient", o["ip2"].grad, gradLogits);
        var ip2 = LeNetReference.LinearBackward(Doubles(o["relu1"]), n, 500, Doubles(p["ip2.weight"]), 10, Doubles(o["ip2"].grad!));
        Check("ip2", "input gradient", o["relu1"].grad, ip2.Input);
        Check("ip2", "weight gradient", p["ip2.weight"].grad, ip2.Weight);
        Check("ip2", "bias gradient", p["ip2.bias"].grad, ip2.Bias);
        Check("relu1", "input gradient", o["ip1"].grad, LeNetReference.ReluBackward(Doubles(o["ip1"]), Doubles(o["relu1"].grad!)));
        var ip1 = LeNetReference.LinearBackward(Doubles(o["pool2"]), n, 800, Doubles(p["ip1.weight"]), 500, Doubles(o["ip1"].grad!));
        Check("ip1", "input gradient", o["pool2"].grad, ip1.Input);
        Check("ip1", "weight gradient", p["ip1.weight"].grad, ip1.Weight);
        Check("ip1", "bias gradient", p["ip1.bias"].grad, ip1.Bias);
        // A max-pool's gradient goes to the element its forward picked, from the device's own input.
        void PoolCheck(string pool, string input, int channels, int side)
        {
            var inputValues = Doubles(o[input]);
            var argMax = LeNetReference.MaxPool2x2Forward(inputValues, n, channels, side, side).ArgMax;
            Check(pool, "input gradient", o[input].grad, LeNetReference.MaxPool2x2Backward(Doubles(o[pool].grad!), argMax, inputValues.Length));
        }

        PoolCheck("pool2", "conv2", 50, 8);
        var conv2 = LeNetReference.Conv2dBackward(Doubles(o["pool1"]), n, 20, 12, 12, Doubles(p["conv2.weight"]), 50, 5, Doubles(o["conv2"].grad!), inputGradient: true);
        Check("conv2", "input gradient", o["pool1"].grad, conv2.Input);
        Check("conv2", "weight gradient", p["conv2.weight"].grad, conv2.Weight);
        Check("conv2", "bias gradient", p["conv2.bias"].grad, conv2.Bias);
        PoolCheck("pool1", "conv1", 20, 24);
        var conv1 = LeNetReference.Conv2dBackward(Doubles(input), n, 1, 28, 28, Doubles(p["conv1.weight"]), 20, 5, Doubles(o["conv1"].grad!), inputGradient: false);
        Check("conv1", "weight gradient", p["conv1.weight"].grad, conv1.Weight);
        Check("conv1", "bias gradient", p["conv1.bias"].grad, conv1.Bias);
    }

    /// <summary>One step of the trainer's Caffe SGD (momentum 0.9, weight decay 0.0005, rate 0.01, bias lr_mult 2) from zero history.</summary>
    private static LayerCheck UpdateCheck(Dictionary<string, Tensor> parameters, SelfTestFault? fault)
    {
        var solverSpec = new SolverSpec();
        var before = parameters.ToDictionary(p => p.Key, p => (Weights: Doubles(p.Value), Gradient: Doubles(p.Value.grad!)));
        using (var solver = new CaffeSgd(parameters.Select(p => (p.Key, p.Value, LeNet.LearningRateMultiplier(p.Key))), solverSpec.Momentum, solverSpec.WeightDecay))
            solver.Step(LearningRate);
        double worst = 0;
        foreach (var (name, parameter) in parameters)
        {
            var (weights, gradient) = before[name];
            var reference = LeNetReference.CaffeSgdStep(weights, gradient, new double[weights.Length], LearningRate, LeNet.LearningRateMultiplier(name), solverSpec.Momentum, solverSpec.WeightDecay);
            var updated = Floats(parameter);
            if (fault?.Layer == "update") updated[0] += 0.5f;
            worst = Math.Max(worst, LeNetReference.RelativeError(updated, reference.Parameter));
        }
        return new LayerCheck("update", "all", "parameters", worst, Tolerance);
    }

    private static float[] Floats(Tensor t)
    {
        using var cpu = t.detach().cpu().contiguous();
        return cpu.data<float>().ToArray();
    }

    private static double[] Doubles(Tensor t) => Array.ConvertAll(Floats(t), v => (double)v);
}
