using Sweep.GpuWorker.Training;
using Sweep.Protocol.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.Tests;

public sealed class LearningRatePolicyTests
{
    [Theory]
    [InlineData(0, 0.01)]
    [InlineData(999, 0.0093108)]
    public void Inv_follows_caffe_with_caffes_own_gamma(int iteration, double expected)
    {
        var solver = new SolverSpec(Gamma: 0.0001, Power: 0.75);
        Assert.Equal(expected, solver.LearningRateAt(0.01, iteration), 7);
    }

    [Fact]
    public void Inv_with_the_papers_gamma_falls_to_a_little_under_six_tenths_by_iteration_1000()
    {
        var solver = new SolverSpec(Gamma: 0.001, Power: 0.75);
        // 0.01 × 2^(−0.75) = 0.0059460
        Assert.Equal(0.0059460, solver.LearningRateAt(0.01, 1000), 7);
    }

    [Fact]
    public void Fixed_never_changes_and_step_drops_by_gamma_every_step()
    {
        Assert.Equal(0.05, new SolverSpec(Policy: LearningRatePolicy.Fixed).LearningRateAt(0.05, 12345));
        var step = new SolverSpec(Policy: LearningRatePolicy.Step, Gamma: 0.1, StepSize: 100);
        Assert.Equal(0.01, step.LearningRateAt(0.01, 99), 12);
        Assert.Equal(0.001, step.LearningRateAt(0.01, 100), 12);
        Assert.Equal(0.0001, step.LearningRateAt(0.01, 250), 12);
    }
}

[Collection(TorchCollection.Name)]
public sealed class LeNetTests
{
    [Fact]
    public void Has_caffes_layer_shapes_and_431080_parameters()
    {
        using var model = new LeNet();
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => string.Join("x", p.parameter.shape));

        Assert.Equal(LeNet.ParameterCount, model.parameters().Sum(p => p.numel()));
        Assert.Equal("20x1x5x5", shapes["conv1.weight"]);
        Assert.Equal("50x20x5x5", shapes["conv2.weight"]);
        Assert.Equal("500x800", shapes["ip1.weight"]);
        Assert.Equal("10x500", shapes["ip2.weight"]);
        using var output = model.call(zeros(3, 1, 28, 28));
        Assert.Equal(new long[] { 3, 10 }, output.shape);
    }

    [Fact]
    public void Caffe_xavier_fills_weights_within_the_fan_in_bound_and_zeroes_biases()
    {
        using var model = new LeNet();
        using var generator = new Generator(7);
        model.InitializeLikeCaffe(generator);

        foreach (var (name, parameter) in model.named_parameters())
        {
            var values = parameter.detach().flatten().data<float>().ToArray();
            if (name.EndsWith("bias"))
            {
                Assert.All(values, v => Assert.Equal(0f, v));
                continue;
            }
            long fanIn = parameter.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            double bound = Math.Sqrt(3.0 / fanIn);
            Assert.All(values, v => Assert.InRange(Math.Abs(v), 0, bound));
            // A uniform fill reaches close to its bound and has the standard deviation bound/√3.
            Assert.True(values.Max(v => Math.Abs(v)) > 0.9 * bound, $"{name} never came near ±{bound}");
            double std = Math.Sqrt(values.Average(v => (double)v * v));
            Assert.InRange(std, 0.9 * bound / Math.Sqrt(3), 1.1 * bound / Math.Sqrt(3));
        }
    }

    [Fact]
    public void The_same_seed_gives_the_same_weights_and_another_seed_does_not()
    {
        float[] Weights(ulong seed)
        {
            using var model = new LeNet();
            using var generator = new Generator(seed);
            model.InitializeLikeCaffe(generator);
            return model.named_parameters().First(p => p.name == "ip1.weight").parameter.detach().flatten().data<float>().ToArray();
        }

        Assert.Equal(Weights(3), Weights(3));
        Assert.NotEqual(Weights(3), Weights(4));
    }
}

[Collection(TorchCollection.Name)]
public sealed class CaffeSgdTests
{
    [Fact]
    public void Applies_caffes_update_with_weight_decay_momentum_and_the_bias_multiplier()
    {
        // weight w = [1, −2] with lr_mult 1; bias b = [0.5] with lr_mult 2; constant gradients.
        var weight = tensor(new float[] { 1f, -2f }).requires_grad_();
        var bias = tensor(new float[] { 0.5f }).requires_grad_();
        using var solver = new CaffeSgd([("w", weight, 1.0), ("b", bias, 2.0)], momentum: 0.9, weightDecay: 0.1);
        var weightGradient = tensor(new float[] { 0.5f, 0.25f });
        var biasGradient = tensor(new float[] { 1f });

        void StepWith(double rate)
        {
            solver.ZeroGrad();
            ((weight * weightGradient).sum() + (bias * biasGradient).sum()).backward();
            solver.Step(rate);
        }

        // Iteration 0, rate 0.1: diff = g + 0.1·w = [0.6, 0.05]; history = 0.1·diff; w −= history.
        // Bias: diff = 1 + 0.05 = 1.05; history = 0.2·1.05 = 0.21; b = 0.29.
        StepWith(0.1);
        AssertValues([0.94f, -2.005f], weight);
        AssertValues([0.29f], bias);

        // Iteration 1, rate 0.05: diff = [0.5 + 0.094, 0.25 − 0.2005] = [0.594, 0.0495];
        // history = 0.05·diff + 0.9·[0.06, 0.005] = [0.0837, 0.006975].
        // Bias: diff = 1 + 0.029 = 1.029; history = 0.1·1.029 + 0.9·0.21 = 0.2919; b = −0.0019.
        StepWith(0.05);
        AssertValues([0.8563f, -2.011975f], weight);
        AssertValues([-0.0019f], bias);
    }

    [Fact]
    public void Differs_from_torchsharps_sgd_when_the_rate_changes()
    {
        // TorchSharp: buf = 0.9·buf + g; w −= lr·buf. With the same two steps (no decay) its second
        // update is 0.05·(0.9·0.5 + 0.5) = 0.0475, Caffe's is 0.05·0.5 + 0.9·0.05 = 0.07.
        var caffe = tensor(new float[] { 1f }).requires_grad_();
        var torchSharp = tensor(new float[] { 1f }).requires_grad_();
        using var solver = new CaffeSgd([("w", caffe, 1.0)], momentum: 0.9, weightDecay: 0);
        var sgd = optim.SGD([new TorchSharp.Modules.Parameter(torchSharp.detach().clone())], 0.1, momentum: 0.9);
        var sgdWeight = sgd.parameters().Single();
        foreach (var rate in new[] { 0.1, 0.05 })
        {
            solver.ZeroGrad();
            (caffe * 0.5f).sum().backward();
            solver.Step(rate);
            sgd.zero_grad();
            foreach (var group in sgd.ParamGroups) group.LearningRate = rate;
            (sgdWeight * 0.5f).sum().backward();
            sgd.step();
        }

        AssertValues([1f - 0.05f - 0.07f], caffe);
        AssertValues([1f - 0.05f - 0.0475f], sgdWeight);
    }

    private static void AssertValues(float[] expected, Tensor actual)
    {
        var values = actual.detach().data<float>().ToArray();
        Assert.Equal(expected.Length, values.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], values[i], 5);
    }
}
