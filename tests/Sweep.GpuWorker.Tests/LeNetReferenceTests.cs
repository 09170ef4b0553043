using Sweep.GpuWorker.SelfTest;
using R = Sweep.GpuWorker.SelfTest.LeNetReference;

namespace Sweep.GpuWorker.Tests;

/// <summary>
/// Checks the float64 LeNet reference against values worked out by hand and against central finite
/// differences, never against itself.
/// </summary>
public sealed class LeNetReferenceTests
{
    private const double FiniteDifferenceStep = 1e-6;
    private const double GradientTolerance = 1e-7;

    // ---- convolution ------------------------------------------------------------------------------

    [Fact]
    public void Conv_of_a_3x3_image_with_a_2x2_kernel_matches_the_hand_computed_cross_correlation()
    {
        double[] x = [1, 2, 3,
                      4, 5, 6,
                      7, 8, 9];
        double[] weight = [1, 2,
                           3, 4];

        var y = R.Conv2dForward(x, 1, 1, 3, 3, weight, [0.5], 1, 2);

        // y00 = 1·1 + 2·2 + 3·4 + 4·5 + 0.5; a flipped kernel (true convolution) would give 23.5 instead.
        Assert.Equal(new[] { 37.5, 47.5, 67.5, 77.5 }, y);
    }

    [Fact]
    public void Conv_mixes_channels_with_weight_layout_out_in_and_keeps_batches_apart()
    {
        // n = 2, c = 2, 1×2 images, 3 output channels, 1×1 kernels: y[n,o,:] = b[o] + Σ_c W[o,c]·x[n,c,:].
        double[] x = [1, 2,   10, 20,    // image 0: channel 0, channel 1
                      3, 4,   30, 40];   // image 1
        double[] weight = [1, 0,         // o = 0 takes channel 0
                           0, 1,         // o = 1 takes channel 1
                           2, -1];       // o = 2: 2·c0 − c1
        double[] bias = [0, 100, -1];

        var y = R.Conv2dForward(x, 2, 2, 1, 2, weight, bias, 3, 1);

        Assert.Equal(new double[]
        {
            1, 2,   110, 120,   2 - 10 - 1, 4 - 20 - 1,
            3, 4,   130, 140,   6 - 30 - 1, 8 - 40 - 1,
        }, y);
    }

    [Fact]
    public void Conv_backward_matches_finite_differences()
    {
        const int n = 2, c = 3, h = 6, w = 5, o = 4, k = 3, oh = h - k + 1, ow = w - k + 1;
        var random = new Random(11);
        var x = Uniform(random, n * c * h * w);
        var weight = Uniform(random, o * c * k * k);
        var bias = Uniform(random, o);
        var r = Uniform(random, n * o * oh * ow);

        var (gradInput, gradWeight, gradBias) = R.Conv2dBackward(x, n, c, h, w, weight, o, k, r, inputGradient: true);

        Assert.NotNull(gradInput);
        AssertGradient(FiniteDifference(x, v => Dot(R.Conv2dForward(v, n, c, h, w, weight, bias, o, k), r)), gradInput);
        AssertGradient(FiniteDifference(weight, v => Dot(R.Conv2dForward(x, n, c, h, w, v, bias, o, k), r)), gradWeight);
        AssertGradient(FiniteDifference(bias, v => Dot(R.Conv2dForward(x, n, c, h, w, weight, v, o, k), r)), gradBias);
    }

    [Fact]
    public void Conv_backward_without_the_input_gradient_returns_null_and_the_same_parameter_gradients()
    {
        const int n = 2, c = 2, h = 5, w = 5, o = 3, k = 2;
        var random = new Random(12);
        var x = Uniform(random, n * c * h * w);
        var weight = Uniform(random, o * c * k * k);
        var r = Uniform(random, n * o * 4 * 4);

        var with = R.Conv2dBackward(x, n, c, h, w, weight, o, k, r, inputGradient: true);
        var without = R.Conv2dBackward(x, n, c, h, w, weight, o, k, r, inputGradient: false);

        Assert.Null(without.Input);
        Assert.Equal(with.Weight, without.Weight);
        Assert.Equal(with.Bias, without.Bias);
    }

    // ---- max pooling -----------------------------------------------------------------------------

    [Fact]
    public void Max_pool_takes_each_windows_maximum_and_records_its_flat_index()
    {
        // One 2×4 plane: windows [1 5; 3 2] and [0 −1; 7 4].
        double[] x = [1, 5, 0, -1,
                      3, 2, 7, 4];

        var (y, argMax) = R.MaxPool2x2Forward(x, 1, 1, 2, 4);

        Assert.Equal(new double[] { 5, 7 }, y);
        Assert.Equal(new[] { 1, 6 }, argMax);
    }

    [Fact]
    public void Max_pool_gives_a_tie_to_the_first_element_in_row_major_order()
    {
        // Channel 0: all equal → (0,0). Channel 1: max 3 at (0,1) and (1,1) → (0,1). Channel 2: all −∞ → (0,0).
        double ninf = double.NegativeInfinity;
        double[] x = [4, 4, 4, 4,
                      1, 3, 2, 3,
                      ninf, ninf, ninf, ninf];

        var (y, argMax) = R.MaxPool2x2Forward(x, 1, 3, 2, 2);
        var gradInput = R.MaxPool2x2Backward([10, 20, 30], argMax, x.Length);

        Assert.Equal(new[] { 4, 3, ninf }, y);
        Assert.Equal(new[] { 0, 5, 8 }, argMax);
        Assert.Equal(new double[] { 10, 0, 0, 0, 0, 20, 0, 0, 30, 0, 0, 0 }, gradInput);
    }

    [Fact]
    public void Max_pool_propagates_a_nan_like_libtorch()
    {
        // [1 NaN; 5 2]: a plain `>` scan would pick 5; LibTorch picks the NaN. [NaN 7; 1 2]: the NaN stays.
        double nan = double.NaN;
        double[] x = [1, nan, 5, 2,
                      nan, 7, 1, 2];

        var (y, argMax) = R.MaxPool2x2Forward(x, 2, 1, 2, 2);

        Assert.True(double.IsNaN(y[0]));
        Assert.True(double.IsNaN(y[1]));
        Assert.Equal(new[] { 1, 4 }, argMax);
    }

    [Fact]
    public void Max_pool_backward_accumulates_and_matches_finite_differences()
    {
        const int n = 2, c = 3, h = 4, w = 6;
        var random = new Random(13);
        var x = Uniform(random, n * c * h * w);
        var r = Uniform(random, n * c * (h / 2) * (w / 2));

        var (_, argMax) = R.MaxPool2x2Forward(x, n, c, h, w);
        var gradInput = R.MaxPool2x2Backward(r, argMax, x.Length);

        AssertGradient(FiniteDifference(x, v => Dot(R.MaxPool2x2Forward(v, n, c, h, w).Output, r)), gradInput);
        // Two outputs pointing at one element add up.
        Assert.Equal(new double[] { 0, 5, 0 }, R.MaxPool2x2Backward([2, 3], [1, 1], 3));
    }

    // ---- fully connected and ReLU ----------------------------------------------------------------

    [Fact]
    public void Linear_uses_the_out_by_in_weight_layout()
    {
        double[] weight = [1, 2,
                           3, 4,
                           5, 6];   // [out = 3, in = 2]

        var y = R.LinearForward([1, 2, -1, 0], 2, 2, weight, [0.1, 0.2, 0.3], 3);

        Assert.Equal(new[] { 5.1, 11.2, 17.3, -0.9, -2.8, -4.7 }, y, new ToleranceComparer(1e-12));
    }

    [Fact]
    public void Linear_backward_matches_finite_differences()
    {
        const int n = 3, inFeatures = 7, outFeatures = 5;
        var random = new Random(14);
        var x = Uniform(random, n * inFeatures);
        var weight = Uniform(random, outFeatures * inFeatures);
        var bias = Uniform(random, outFeatures);
        var r = Uniform(random, n * outFeatures);

        var (gradInput, gradWeight, gradBias) = R.LinearBackward(x, n, inFeatures, weight, outFeatures, r);

        AssertGradient(FiniteDifference(x, v => Dot(R.LinearForward(v, n, inFeatures, weight, bias, outFeatures), r)), gradInput);
        AssertGradient(FiniteDifference(weight, v => Dot(R.LinearForward(x, n, inFeatures, v, bias, outFeatures), r)), gradWeight);
        AssertGradient(FiniteDifference(bias, v => Dot(R.LinearForward(x, n, inFeatures, weight, v, outFeatures), r)), gradBias);
    }

    [Fact]
    public void Relu_zeroes_non_positive_values_and_their_gradient()
    {
        Assert.Equal(new double[] { 0, 0, 0, 2.5 }, R.ReluForward([-3, -0.0, 0, 2.5]));
        Assert.Equal(new double[] { 0, 0, 0, 40 }, R.ReluBackward([-3, -0.0, 0, 2.5], [10, 20, 30, 40]));
        Assert.True(double.IsNaN(R.ReluForward([double.NaN])[0]));
    }

    [Fact]
    public void Relu_backward_matches_finite_differences()
    {
        var random = new Random(15);
        // Keep away from the kink at 0, where the finite difference is meaningless.
        var x = Uniform(random, 40).Select(v => v < 0 ? v - 0.1 : v + 0.1).ToArray();
        var r = Uniform(random, 40);

        var gradInput = R.ReluBackward(x, r);

        AssertGradient(FiniteDifference(x, v => Dot(R.ReluForward(v), r)), gradInput);
        Assert.Contains(0.0, gradInput);
    }

    // ---- loss ------------------------------------------------------------------------------------

    [Fact]
    public void Softmax_cross_entropy_of_zero_logits_is_log_classes()
    {
        const int n = 2, classes = 10;
        var (loss, grad) = R.SoftmaxCrossEntropy(new double[n * classes], n, classes, [3, 7]);

        Assert.Equal(Math.Log(10), loss, 14);
        for (int b = 0; b < n; b++)
        {
            for (int k = 0; k < classes; k++)
            {
                double onehot = k == (b == 0 ? 3 : 7) ? 1 : 0;
                Assert.Equal((0.1 - onehot) / n, grad[b * classes + k], 15);
            }
        }
    }

    [Fact]
    public void Softmax_cross_entropy_matches_a_hand_value_and_stays_finite_for_large_logits()
    {
        // Logits [0, ln 3]: softmax [1/4, 3/4]. Row 2, logits [1000, 0] with label 1: −log softmax = 1000 + log(1 + e^−1000).
        var (loss, grad) = R.SoftmaxCrossEntropy([0, Math.Log(3), 1000, 0], 2, 2, [0, 1]);

        Assert.Equal((Math.Log(4) + 1000) / 2, loss, 10);
        Assert.Equal(new[] { (0.25 - 1) / 2, 0.75 / 2, 1.0 / 2, -1.0 / 2 }, grad, new ToleranceComparer(1e-15));
    }

    [Fact]
    public void Softmax_cross_entropy_gradient_matches_finite_differences()
    {
        const int n = 4, classes = 6;
        var random = new Random(16);
        var logits = Uniform(random, n * classes).Select(v => 3 * v).ToArray();
        int[] labels = [0, 5, 2, 2];

        var (_, grad) = R.SoftmaxCrossEntropy(logits, n, classes, labels);

        AssertGradient(FiniteDifference(logits, v => R.SoftmaxCrossEntropy(v, n, classes, labels).Loss), grad);
    }

    [Fact]
    public void A_small_lenet_shaped_chain_backpropagates_to_the_first_convolution()
    {
        // LeNet in miniature, on 2 images of 14×14: conv 2@3×3 → pool → conv 3@3×3 → pool → ip 4 → ReLU → ip 3 → loss.
        var random = new Random(17);
        var x = Uniform(random, 2 * 1 * 14 * 14);
        var b1 = Uniform(random, 2);
        var w2 = Uniform(random, 3 * 2 * 3 * 3);
        var b2 = Uniform(random, 3);
        var w3 = Uniform(random, 4 * 12);
        var b3 = Uniform(random, 4);
        var w4 = Uniform(random, 3 * 4);
        var b4 = Uniform(random, 3);
        int[] labels = [2, 0];

        double Loss(double[] w1, out double[] gradW1)
        {
            var c1 = R.Conv2dForward(x, 2, 1, 14, 14, w1, b1, 2, 3);          // [2, 2, 12, 12]
            var p1 = R.MaxPool2x2Forward(c1, 2, 2, 12, 12);                      // [2, 2, 6, 6]
            var c2 = R.Conv2dForward(p1.Output, 2, 2, 6, 6, w2, b2, 3, 3);     // [2, 3, 4, 4]
            var p2 = R.MaxPool2x2Forward(c2, 2, 3, 4, 4);                        // [2, 3, 2, 2] = [2, 12]
            var f1 = R.LinearForward(p2.Output, 2, 12, w3, b3, 4);              // [2, 4]
            var a1 = R.ReluForward(f1);
            var f2 = R.LinearForward(a1, 2, 4, w4, b4, 3);                       // [2, 3]
            var (loss, g) = R.SoftmaxCrossEntropy(f2, 2, 3, labels);

            var ga1 = R.LinearBackward(a1, 2, 4, w4, 3, g).Input;
            var gf1 = R.ReluBackward(f1, ga1);
            var gp2 = R.LinearBackward(p2.Output, 2, 12, w3, 4, gf1).Input;
            var gc2 = R.MaxPool2x2Backward(gp2, p2.ArgMax, c2.Length);
            var gp1 = R.Conv2dBackward(p1.Output, 2, 2, 6, 6, w2, 3, 3, gc2, inputGradient: true).Input!;
            var gc1 = R.MaxPool2x2Backward(gp1, p1.ArgMax, c1.Length);
            gradW1 = R.Conv2dBackward(x, 2, 1, 14, 14, w1, 2, 3, gc1, inputGradient: false).Weight;
            return loss;
        }

        var w1 = Uniform(random, 2 * 1 * 3 * 3);
        Loss(w1, out var analytic);

        AssertGradient(FiniteDifference(w1, v => Loss(v, out _)), analytic);
    }

    // ---- solver ----------------------------------------------------------------------------------

    [Fact]
    public void Caffe_sgd_carries_history_across_two_steps_with_a_changing_rate()
    {
        double[] w0 = [1.0, -2.0];
        double[] g1 = [0.5, 0.25];
        double[] h0 = [0, 0];
        double[] g2 = [-0.1, 0.4];
        const double lrMult = 2, momentum = 0.9, decay = 0.01;

        var (w1, h1) = R.CaffeSgdStep(w0, g1, h0, 0.1, lrMult, momentum, decay);
        var (w2, h2) = R.CaffeSgdStep(w1, g2, h1, 0.05, lrMult, momentum, decay);

        // Step 1: diff = g + 0.01·w = [0.51, 0.23]; h = 0.2·diff = [0.102, 0.046]; w = [0.898, −2.046].
        var close = new ToleranceComparer(1e-14);
        Assert.Equal(new[] { 0.102, 0.046 }, h1, close);
        Assert.Equal(new[] { 0.898, -2.046 }, w1, close);
        // Step 2: diff = [−0.1 + 0.00898, 0.4 − 0.02046] = [−0.09102, 0.37954];
        // h = 0.1·diff + 0.9·h1 = [0.082698, 0.079354]; w = [0.815302, −2.125354].
        Assert.Equal(new[] { 0.082698, 0.079354 }, h2, close);
        Assert.Equal(new[] { 0.815302, -2.125354 }, w2, close);
        // The inputs are untouched.
        Assert.Equal(new[] { 1.0, -2.0 }, w0);
        Assert.Equal(new[] { 0.0, 0.0 }, h0);
    }

    // ---- relative error and argument checks ------------------------------------------------------

    [Fact]
    public void Relative_error_is_normwise_zero_when_exact_and_infinite_for_non_finite_results()
    {
        Assert.Equal(0, R.RelativeError([1f, -2f, 0.5f], [1.0, -2.0, 0.5]));
        Assert.Equal(0, R.RelativeError([1.0, -2.0], [1.0, -2.0]));
        // max |a − r| = 0.5, max |r| = 2.
        Assert.Equal(0.25, R.RelativeError([1f, 2.5f], [1.0, 2.0]));
        Assert.Equal(0.25, R.RelativeError([1.0, -1.5], [1.0, -2.0]));
        Assert.Equal(double.PositiveInfinity, R.RelativeError([1f, float.NaN], [1.0, 2.0]));
        Assert.Equal(double.PositiveInfinity, R.RelativeError([float.PositiveInfinity, 2f], [1.0, 2.0]));
        Assert.Equal(double.PositiveInfinity, R.RelativeError([double.NaN], [0.0]));
        // A NaN where the reference itself has a NaN (max-pool propagation) is a match.
        Assert.Equal(0, R.RelativeError([float.NaN, 2f], [double.NaN, 2.0]));
    }

    [Fact]
    public void Relative_error_of_different_lengths_throws()
    {
        Assert.Throws<ArgumentException>(() => R.RelativeError([1f, 2f], [1.0]));
        Assert.Throws<ArgumentException>(() => R.RelativeError([1.0], [1.0, 2.0]));
    }

    [Fact]
    public void Mismatched_lengths_are_rejected_naming_the_argument()
    {
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => R.Conv2dForward(new double[9], 1, 1, 3, 3, new double[3], [0], 1, 2)).ParamName);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => R.Conv2dForward(new double[9], 1, 1, 3, 3, new double[4], [0, 0], 1, 2)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => R.Conv2dForward(new double[8], 1, 1, 3, 3, new double[4], [0], 1, 2)).ParamName);
        Assert.Equal("gradOutput", Assert.Throws<ArgumentException>(() => R.Conv2dBackward(new double[9], 1, 1, 3, 3, new double[4], 1, 2, new double[9], true)).ParamName);
        Assert.Equal("w", Assert.Throws<ArgumentException>(() => R.MaxPool2x2Forward(new double[6], 1, 1, 2, 3)).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => R.LinearForward(new double[4], 2, 2, new double[5], [0, 0, 0], 3)).ParamName);
        Assert.Equal("gradOutput", Assert.Throws<ArgumentException>(() => R.LinearBackward(new double[4], 2, 2, new double[6], 3, new double[5])).ParamName);
        Assert.Equal("labels", Assert.Throws<ArgumentException>(() => R.SoftmaxCrossEntropy(new double[4], 2, 2, [0, 2])).ParamName);
        Assert.Equal("history", Assert.Throws<ArgumentException>(() => R.CaffeSgdStep([1, 2], [1, 2], [0], 0.1, 1, 0.9, 0)).ParamName);
    }

    // ---- helpers ---------------------------------------------------------------------------------

    private static double[] Uniform(Random random, int length)
    {
        var values = new double[length];
        for (int i = 0; i < length; i++) values[i] = 2 * random.NextDouble() - 1;
        return values;
    }

    private static double Dot(double[] a, double[] b)
    {
        Assert.Equal(b.Length, a.Length);
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>Central differences (f(v + h·e_i) − f(v − h·e_i)) / 2h for every i.</summary>
    private static double[] FiniteDifference(double[] point, Func<double[], double> loss)
    {
        var gradient = new double[point.Length];
        for (int i = 0; i < point.Length; i++)
        {
            var plus = (double[])point.Clone();
            var minus = (double[])point.Clone();
            plus[i] += FiniteDifferenceStep;
            minus[i] -= FiniteDifferenceStep;
            gradient[i] = (loss(plus) - loss(minus)) / (2 * FiniteDifferenceStep);
        }
        return gradient;
    }

    /// <summary>Normwise relative agreement, computed here rather than with the class under test.</summary>
    private static void AssertGradient(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxDiff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(double.IsFinite(actual[i]), $"gradient[{i}] = {actual[i]}");
            maxDiff = Math.Max(maxDiff, Math.Abs(expected[i] - actual[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        Assert.True(scale > 0, "the finite-difference gradient is all zero, so the check would be vacuous");
        Assert.True(maxDiff <= GradientTolerance * scale, $"max |fd − analytic| = {maxDiff:E3}, max |fd| = {scale:E3}");
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;
    }
}
