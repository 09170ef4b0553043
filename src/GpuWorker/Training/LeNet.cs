using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.Training;

/// <summary>
/// Caffe's MNIST LeNet exactly (examples/mnist/lenet_train_test.prototxt): conv 20@5×5 → max-pool 2 →
/// conv 50@5×5 → max-pool 2 → ip 500 → ReLU → ip 10. No ReLU after the convolutions, no dropout:
/// 431,080 parameters. Input is expected already scaled by 1/256.
/// </summary>
public sealed class LeNet : nn.Module<Tensor, Tensor>
{
    public const long ParameterCount = 431_080;

    private readonly Conv2d conv1 = nn.Conv2d(1, 20, kernel_size: 5);
    private readonly MaxPool2d pool1 = nn.MaxPool2d(kernel_size: 2, stride: 2);
    private readonly Conv2d conv2 = nn.Conv2d(20, 50, kernel_size: 5);
    private readonly MaxPool2d pool2 = nn.MaxPool2d(kernel_size: 2, stride: 2);
    private readonly Linear ip1 = nn.Linear(50 * 4 * 4, 500);
    private readonly ReLU relu1 = nn.ReLU();
    private readonly Linear ip2 = nn.Linear(500, 10);

    public LeNet() : base(nameof(LeNet)) => RegisterComponents();

    /// <summary>
    /// Channels-last (NHWC strides) from conv1's output on: LibTorch's CPU max-pooling and its own
    /// (non-oneDNN) convolution have much faster channels-last kernels (pool1 forward 1.0 ms against
    /// 5.5 ms at batch 64), which makes a training iteration about 1.2 times faster than NCHW with or
    /// without oneDNN (docs/benchmarks.md, <c>kernels</c>). conv1 stays NCHW: with its one input
    /// channel, its channels-last backward is 3.5 times slower. Every layer still matches float64
    /// within 1e-6 and pooling keeps its first-maximum tie-break; only float rounding differs from
    /// NCHW. Off only for the benchmark that measures the layouts against each other.
    /// </summary>
    internal bool ChannelsLast { get; init; } = true;

    /// <summary>The layers in order, by the names <see cref="Trace"/> gives their outputs.</summary>
    public static IReadOnlyList<string> LayerNames { get; } = ["conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2"];

    /// <summary>Logits [N, 10] for images [N, 1, 28, 28].</summary>
    public override Tensor forward(Tensor input) => Trace(input, null);

    /// <summary>
    /// The forward pass, optionally keeping every layer's output (in the order of
    /// <see cref="LayerNames"/>; pool2's output is flattened to [N, 800] before ip1): what training
    /// computes, exposed layer by layer for the known-answer self-test.
    /// </summary>
    /// <param name="input">Images [N, 1, 28, 28], scaled by 1/256.</param>
    /// <param name="outputs">Receives (layer, output) pairs when not null.</param>
    /// <returns>Logits [N, 10].</returns>
    public Tensor Trace(Tensor input, List<(string Layer, Tensor Output)>? outputs)
    {
        Tensor Keep(string layer, Tensor output)
        {
            outputs?.Add((layer, output));
            return output;
        }

        var x = Keep("conv1", conv1.call(input));
        if (ChannelsLast) x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        // pool1, conv2 and pool2 then stay channels-last by themselves; flatten(1) copies back to NCHW order.
        x = Keep("pool1", pool1.call(x));
        x = Keep("conv2", conv2.call(x));
        x = Keep("pool2", pool2.call(x)).flatten(1);
        x = Keep("ip1", ip1.call(x));
        x = Keep("relu1", relu1.call(x));
        return Keep("ip2", ip2.call(x));
    }

    /// <summary>
    /// Caffe's fillers: weights "xavier", which in Caffe is uniform(−√(3/fan_in), +√(3/fan_in))
    /// (not Glorot's fan_in + fan_out), biases constant 0.
    /// </summary>
    public void InitializeLikeCaffe(Generator generator)
    {
        using var _ = no_grad();
        foreach (var (name, parameter) in named_parameters())
        {
            if (name.EndsWith("bias", StringComparison.Ordinal))
            {
                parameter.zero_();
                continue;
            }
            long fanIn = parameter.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            double bound = Math.Sqrt(3.0 / fanIn);
            parameter.uniform_(-bound, bound, generator);
        }
    }

    /// <summary>Caffe's per-parameter multipliers: every layer has lr_mult 1 for weights and 2 for biases; decay_mult 1.</summary>
    public static double LearningRateMultiplier(string parameterName) =>
        parameterName.EndsWith("bias", StringComparison.Ordinal) ? 2.0 : 1.0;
}
