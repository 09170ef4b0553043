using System.Runtime.CompilerServices;

namespace Sweep.GpuWorker.SelfTest;

/// <summary>
/// An independent float64 reference for the layers of Caffe's MNIST LeNet
/// (examples/mnist/lenet_train_test.prototxt: conv 20@5×5 → max-pool 2 → conv 50@5×5 → max-pool 2 →
/// ip 500 → ReLU → ip 10 → SoftmaxWithLoss) and for Caffe's SGD update, written as plain loops with
/// no TorchSharp and no other library, so that LibTorch's float32 kernels can be checked layer by layer.
/// </summary>
/// <remarks>
/// Tensors are flat <see cref="double"/> arrays in row-major order with the shape passed explicitly:
/// images are NCHW (<c>x[((n·C + c)·H + i)·W + j]</c>), convolution weights are [out, in, k, k], and
/// fully connected weights are [out, in] (the layout of PyTorch's <c>Linear</c> and Caffe's
/// <c>InnerProduct</c>). Every function returns new arrays and never changes its arguments. Every
/// loop runs in a fixed order on one thread, so a result does not depend on the machine's thread count.
/// The innermost loops run over contiguous memory. Forward and backward for LeNet on 128 images take
/// roughly a second on one core.
/// </remarks>
public static class LeNetReference
{
    /// <summary>
    /// A valid 2-D convolution with stride 1 and no padding. Like Caffe and PyTorch, it is a cross-correlation
    /// (the kernel is not flipped):
    /// <c>y[n,o,i,j] = b[o] + Σ_{c,ki,kj} W[o,c,ki,kj]·x[n,c,i+ki,j+kj]</c>.
    /// </summary>
    /// <param name="x">Input, shape [n, c, h, w].</param>
    /// <param name="n">Batch size.</param>
    /// <param name="c">Input channels.</param>
    /// <param name="h">Input height.</param>
    /// <param name="w">Input width.</param>
    /// <param name="weight">Kernels, shape [outChannels, c, k, k].</param>
    /// <param name="bias">Biases, shape [outChannels].</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="k">Kernel side, at most <paramref name="h"/> and <paramref name="w"/>.</param>
    /// <returns>The output, shape [n, outChannels, h − k + 1, w − k + 1].</returns>
    /// <exception cref="ArgumentException">A length does not match the shape, or a size is not positive.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // the first call is often the only one: skip tier-0 JIT
    public static double[] Conv2dForward(double[] x, int n, int c, int h, int w, double[] weight, double[] bias, int outChannels, int k)
    {
        var (oh, ow) = CheckConv(x, n, c, h, w, weight, outChannels, k);
        ArgumentNullException.ThrowIfNull(bias);
        CheckLength(bias, outChannels, nameof(bias));

        var y = new double[Product(n, outChannels, oh, ow, nameof(x))];
        int inPlane = h * w, outPlane = oh * ow, kk = k * k;
        for (int b = 0; b < n; b++)
        {
            for (int o = 0; o < outChannels; o++)
            {
                var yPlane = y.AsSpan((b * outChannels + o) * outPlane, outPlane);
                yPlane.Fill(bias[o]);
                for (int ci = 0; ci < c; ci++)
                {
                    var xPlane = x.AsSpan((b * c + ci) * inPlane, inPlane);
                    var kernel = weight.AsSpan((o * c + ci) * kk, kk);
                    for (int ki = 0; ki < k; ki++)
                    {
                        for (int kj = 0; kj < k; kj++)
                        {
                            double wv = kernel[ki * k + kj];
                            for (int i = 0; i < oh; i++)
                            {
                                var yRow = yPlane.Slice(i * ow, ow);
                                var xRow = xPlane.Slice((i + ki) * w + kj, ow);
                                for (int j = 0; j < yRow.Length; j++) yRow[j] += wv * xRow[j];
                            }
                        }
                    }
                }
            }
        }
        return y;
    }

    /// <summary>
    /// Gradients of a scalar loss L through <see cref="Conv2dForward"/>, given <c>G = ∂L/∂y</c>:
    /// <c>∂L/∂W[o,c,ki,kj] = Σ_{n,i,j} G[n,o,i,j]·x[n,c,i+ki,j+kj]</c>,
    /// <c>∂L/∂b[o] = Σ_{n,i,j} G[n,o,i,j]</c>,
    /// <c>∂L/∂x[n,c,p,q] = Σ_{o,ki,kj} W[o,c,ki,kj]·G[n,o,p−ki,q−kj]</c> (terms outside the output dropped).
    /// </summary>
    /// <param name="x">The forward input, shape [n, c, h, w].</param>
    /// <param name="n">Batch size.</param>
    /// <param name="c">Input channels.</param>
    /// <param name="h">Input height.</param>
    /// <param name="w">Input width.</param>
    /// <param name="weight">Kernels, shape [outChannels, c, k, k].</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="k">Kernel side.</param>
    /// <param name="gradOutput">∂L/∂y, shape [n, outChannels, h − k + 1, w − k + 1].</param>
    /// <param name="inputGradient">Whether to compute ∂L/∂x (a first layer does not need it).</param>
    /// <returns>
    /// ∂L/∂x, shape [n, c, h, w], or null unless <paramref name="inputGradient"/>; ∂L/∂W, shape
    /// [outChannels, c, k, k]; ∂L/∂b, shape [outChannels].
    /// </returns>
    /// <exception cref="ArgumentException">A length does not match the shape, or a size is not positive.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // the first call is often the only one: skip tier-0 JIT
    public static (double[]? Input, double[] Weight, double[] Bias) Conv2dBackward(
        double[] x, int n, int c, int h, int w, double[] weight, int outChannels, int k, double[] gradOutput, bool inputGradient)
    {
        var (oh, ow) = CheckConv(x, n, c, h, w, weight, outChannels, k);
        ArgumentNullException.ThrowIfNull(gradOutput);
        CheckLength(gradOutput, Product(n, outChannels, oh, ow, nameof(gradOutput)), nameof(gradOutput));

        var gradWeight = new double[weight.Length];
        var gradBias = new double[outChannels];
        var gradInput = inputGradient ? new double[x.Length] : null;
        int inPlane = h * w, outPlane = oh * ow, kk = k * k;
        for (int b = 0; b < n; b++)
        {
            for (int o = 0; o < outChannels; o++)
            {
                var gPlane = gradOutput.AsSpan((b * outChannels + o) * outPlane, outPlane);
                double biasSum = 0;
                for (int p = 0; p < gPlane.Length; p++) biasSum += gPlane[p];
                gradBias[o] += biasSum;

                for (int ci = 0; ci < c; ci++)
                {
                    var xPlane = x.AsSpan((b * c + ci) * inPlane, inPlane);
                    var gwKernel = gradWeight.AsSpan((o * c + ci) * kk, kk);
                    var kernel = weight.AsSpan((o * c + ci) * kk, kk);
                    var gxPlane = gradInput is null ? Span<double>.Empty : gradInput.AsSpan((b * c + ci) * inPlane, inPlane);
                    for (int ki = 0; ki < k; ki++)
                    {
                        for (int kj = 0; kj < k; kj++)
                        {
                            double sum = 0;
                            for (int i = 0; i < oh; i++)
                            {
                                var gRow = gPlane.Slice(i * ow, ow);
                                var xRow = xPlane.Slice((i + ki) * w + kj, ow);
                                for (int j = 0; j < gRow.Length; j++) sum += gRow[j] * xRow[j];
                            }
                            gwKernel[ki * k + kj] += sum;

                            if (gradInput is null) continue;
                            double wv = kernel[ki * k + kj];
                            for (int i = 0; i < oh; i++)
                            {
                                var gRow = gPlane.Slice(i * ow, ow);
                                var gxRow = gxPlane.Slice((i + ki) * w + kj, ow);
                                for (int j = 0; j < gRow.Length; j++) gxRow[j] += wv * gRow[j];
                            }
                        }
                    }
                }
            }
        }
        return (gradInput, gradWeight, gradBias);
    }

    /// <summary>
    /// Max pooling with a 2×2 kernel and stride 2: <c>y[n,c,i,j] = max_{di,dj∈{0,1}} x[n,c,2i+di,2j+dj]</c>.
    /// The window is scanned in row-major order, (0,0), (0,1), (1,0), (1,1), starting from −∞ with the first
    /// element as the provisional winner, and an element wins when <c>val &gt; max || double.IsNaN(val)</c>
    /// (LibTorch's CPU kernel, aten/src/ATen/native/cpu/MaxPoolKernel.cpp): ties go to the first element and
    /// a NaN in the window propagates (the last NaN wins).
    /// </summary>
    /// <param name="x">Input, shape [n, c, h, w].</param>
    /// <param name="n">Batch size.</param>
    /// <param name="c">Channels.</param>
    /// <param name="h">Height, even.</param>
    /// <param name="w">Width, even.</param>
    /// <returns>
    /// The output, shape [n, c, h/2, w/2], and for each output element the flat index into
    /// <paramref name="x"/> of the element it was taken from (same shape).
    /// </returns>
    /// <exception cref="ArgumentException">A length does not match the shape, a size is not positive, or h or w is odd.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // the first call is often the only one: skip tier-0 JIT
    public static (double[] Output, int[] ArgMax) MaxPool2x2Forward(double[] x, int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(x);
        CheckPositive(n, nameof(n));
        CheckPositive(c, nameof(c));
        CheckPositive(h, nameof(h));
        CheckPositive(w, nameof(w));
        if (h % 2 != 0) throw new ArgumentException($"The height must be even, not {h}.", nameof(h));
        if (w % 2 != 0) throw new ArgumentException($"The width must be even, not {w}.", nameof(w));
        CheckLength(x, Product(n, c, h, w, nameof(x)), nameof(x));

        int oh = h / 2, ow = w / 2, planes = n * c;
        var y = new double[planes * oh * ow];
        var argMax = new int[y.Length];
        for (int plane = 0; plane < planes; plane++)
        {
            int inBase = plane * h * w, outBase = plane * oh * ow;
            for (int i = 0; i < oh; i++)
            {
                for (int j = 0; j < ow; j++)
                {
                    int first = inBase + 2 * i * w + 2 * j;
                    double max = double.NegativeInfinity;
                    int maxIndex = first;
                    for (int di = 0; di < 2; di++)
                    {
                        for (int dj = 0; dj < 2; dj++)
                        {
                            int index = first + di * w + dj;
                            double val = x[index];
                            if (val > max || double.IsNaN(val))
                            {
                                max = val;
                                maxIndex = index;
                            }
                        }
                    }
                    y[outBase + i * ow + j] = x[maxIndex];
                    argMax[outBase + i * ow + j] = maxIndex;
                }
            }
        }
        return (y, argMax);
    }

    /// <summary>
    /// Gradient through <see cref="MaxPool2x2Forward"/>: <c>∂L/∂x[argMax[p]] += ∂L/∂y[p]</c>, zero elsewhere.
    /// </summary>
    /// <param name="gradOutput">∂L/∂y, shape [n, c, h/2, w/2].</param>
    /// <param name="argMax">The indices from the forward pass, same length as <paramref name="gradOutput"/>.</param>
    /// <param name="inputLength">n·c·h·w, the length of the forward input.</param>
    /// <returns>∂L/∂x, shape [n, c, h, w].</returns>
    /// <exception cref="ArgumentException">The lengths differ, or an index is outside the input.</exception>
    public static double[] MaxPool2x2Backward(double[] gradOutput, int[] argMax, int inputLength)
    {
        ArgumentNullException.ThrowIfNull(gradOutput);
        ArgumentNullException.ThrowIfNull(argMax);
        CheckPositive(inputLength, nameof(inputLength));
        CheckLength(argMax, gradOutput.Length, nameof(argMax));

        var gradInput = new double[inputLength];
        for (int p = 0; p < gradOutput.Length; p++)
        {
            int index = argMax[p];
            if ((uint)index >= (uint)inputLength)
                throw new ArgumentException($"argMax[{p}] = {index} is outside an input of length {inputLength}.", nameof(argMax));
            gradInput[index] += gradOutput[p];
        }
        return gradInput;
    }

    /// <summary>
    /// A fully connected layer, <c>y = x·Wᵀ + b</c>: <c>y[n,o] = b[o] + Σ_i x[n,i]·W[o,i]</c>.
    /// </summary>
    /// <param name="x">Input, shape [n, inFeatures] (an NCHW tensor flattened per sample).</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="weight">Weights, shape [outFeatures, inFeatures].</param>
    /// <param name="bias">Biases, shape [outFeatures].</param>
    /// <param name="outFeatures">Output features.</param>
    /// <returns>The output, shape [n, outFeatures].</returns>
    /// <exception cref="ArgumentException">A length does not match the shape, or a size is not positive.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // the first call is often the only one: skip tier-0 JIT
    public static double[] LinearForward(double[] x, int n, int inFeatures, double[] weight, double[] bias, int outFeatures)
    {
        CheckLinear(x, n, inFeatures, weight, outFeatures);
        ArgumentNullException.ThrowIfNull(bias);
        CheckLength(bias, outFeatures, nameof(bias));

        var y = new double[Product(n, outFeatures, 1, 1, nameof(x))];
        for (int b = 0; b < n; b++)
        {
            var xRow = x.AsSpan(b * inFeatures, inFeatures);
            for (int o = 0; o < outFeatures; o++)
            {
                var wRow = weight.AsSpan(o * inFeatures, inFeatures);
                double sum = 0;
                for (int i = 0; i < xRow.Length; i++) sum += xRow[i] * wRow[i];
                y[b * outFeatures + o] = bias[o] + sum;
            }
        }
        return y;
    }

    /// <summary>
    /// Gradients through <see cref="LinearForward"/>, given <c>G = ∂L/∂y</c>:
    /// <c>∂L/∂x = G·W</c>, <c>∂L/∂W = Gᵀ·x</c>, <c>∂L/∂b[o] = Σ_n G[n,o]</c>.
    /// </summary>
    /// <param name="x">The forward input, shape [n, inFeatures].</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="weight">Weights, shape [outFeatures, inFeatures].</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="gradOutput">∂L/∂y, shape [n, outFeatures].</param>
    /// <returns>∂L/∂x, shape [n, inFeatures]; ∂L/∂W, shape [outFeatures, inFeatures]; ∂L/∂b, shape [outFeatures].</returns>
    /// <exception cref="ArgumentException">A length does not match the shape, or a size is not positive.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // the first call is often the only one: skip tier-0 JIT
    public static (double[] Input, double[] Weight, double[] Bias) LinearBackward(
        double[] x, int n, int inFeatures, double[] weight, int outFeatures, double[] gradOutput)
    {
        CheckLinear(x, n, inFeatures, weight, outFeatures);
        ArgumentNullException.ThrowIfNull(gradOutput);
        CheckLength(gradOutput, Product(n, outFeatures, 1, 1, nameof(gradOutput)), nameof(gradOutput));

        var gradInput = new double[x.Length];
        var gradWeight = new double[weight.Length];
        var gradBias = new double[outFeatures];
        for (int b = 0; b < n; b++)
        {
            var xRow = x.AsSpan(b * inFeatures, inFeatures);
            var gxRow = gradInput.AsSpan(b * inFeatures, inFeatures);
            for (int o = 0; o < outFeatures; o++)
            {
                double g = gradOutput[b * outFeatures + o];
                gradBias[o] += g;
                var wRow = weight.AsSpan(o * inFeatures, inFeatures);
                var gwRow = gradWeight.AsSpan(o * inFeatures, inFeatures);
                for (int i = 0; i < gxRow.Length; i++) gxRow[i] += g * wRow[i];
                for (int i = 0; i < gwRow.Length; i++) gwRow[i] += g * xRow[i];
            }
        }
        return (gradInput, gradWeight, gradBias);
    }

    /// <summary>
    /// <c>y = max(x, 0)</c> elementwise, with NaN propagated (as LibTorch's <c>relu</c> and Caffe's
    /// <c>std::max(x, 0)</c> both do): <c>y = x &lt;= 0 ? 0 : x</c>.
    /// </summary>
    /// <param name="x">Input, any shape.</param>
    /// <returns>The output, the shape of <paramref name="x"/>.</returns>
    public static double[] ReluForward(double[] x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = x[i] <= 0 ? 0 : x[i];
        return y;
    }

    /// <summary>
    /// Gradient through <see cref="ReluForward"/>: <c>∂L/∂x = x &lt;= 0 ? 0 : ∂L/∂y</c> (zero at x = 0, as in
    /// LibTorch's <c>threshold_backward</c>).
    /// </summary>
    /// <param name="x">The forward input, any shape.</param>
    /// <param name="gradOutput">∂L/∂y, the shape of <paramref name="x"/>.</param>
    /// <returns>∂L/∂x, the shape of <paramref name="x"/>.</returns>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static double[] ReluBackward(double[] x, double[] gradOutput)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(gradOutput);
        CheckLength(gradOutput, x.Length, nameof(gradOutput));
        var gradInput = new double[x.Length];
        for (int i = 0; i < x.Length; i++) gradInput[i] = x[i] <= 0 ? 0 : gradOutput[i];
        return gradInput;
    }

    /// <summary>
    /// Caffe's SoftmaxWithLoss normalised by the batch (src/caffe/layers/softmax_loss_layer.cpp, which with
    /// no ignored label divides by n), the same as PyTorch's <c>cross_entropy</c> with mean reduction:
    /// <c>L = (1/n) Σ_n −log softmax(z_n)[label_n]</c>, computed stably as
    /// <c>−log softmax(z)[t] = log Σ_k exp(z_k − m) − (z_t − m)</c> with <c>m = max_k z_k</c>;
    /// <c>∂L/∂z[n,k] = (softmax(z_n)[k] − [k = label_n]) / n</c>. (Caffe clamps the probability at FLT_MIN,
    /// which only matters for losses above 87; this reference does not clamp.)
    /// </summary>
    /// <param name="logits">Logits z, shape [n, classes].</param>
    /// <param name="n">Batch size.</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="labels">Labels, shape [n], each in [0, classes).</param>
    /// <returns>The mean loss (nats) and ∂L/∂z, shape [n, classes].</returns>
    /// <exception cref="ArgumentException">A length does not match the shape, a size is not positive, or a label is out of range.</exception>
    public static (double Loss, double[] GradLogits) SoftmaxCrossEntropy(double[] logits, int n, int classes, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        CheckPositive(n, nameof(n));
        CheckPositive(classes, nameof(classes));
        CheckLength(logits, Product(n, classes, 1, 1, nameof(logits)), nameof(logits));
        CheckLength(labels, n, nameof(labels));

        var grad = new double[logits.Length];
        double total = 0;
        for (int b = 0; b < n; b++)
        {
            int label = labels[b];
            if ((uint)label >= (uint)classes)
                throw new ArgumentException($"labels[{b}] = {label} is outside [0, {classes}).", nameof(labels));
            var z = logits.AsSpan(b * classes, classes);
            var g = grad.AsSpan(b * classes, classes);
            double max = double.NegativeInfinity;
            for (int k = 0; k < z.Length; k++) max = Math.Max(max, z[k]);
            double sum = 0;
            for (int k = 0; k < z.Length; k++)
            {
                g[k] = Math.Exp(z[k] - max);
                sum += g[k];
            }
            total += Math.Log(sum) - (z[label] - max);
            for (int k = 0; k < g.Length; k++) g[k] = g[k] / sum / n;
            g[label] -= 1.0 / n;
        }
        return (total / n, grad);
    }

    /// <summary>
    /// One step of Caffe's SGD for one parameter blob (src/caffe/solvers/sgd_solver.cpp, Regularize then
    /// ComputeUpdateValue then Net::Update):
    /// <c>diff = g + wd·w; history' = rate·lrMult·diff + momentum·history; w' = w − history'</c>.
    /// </summary>
    /// <param name="parameter">The parameter w, any shape.</param>
    /// <param name="gradient">Its gradient g, the shape of <paramref name="parameter"/>.</param>
    /// <param name="history">The momentum history from the previous step (zeros at first), the same shape.</param>
    /// <param name="rate">The solver's learning rate for this iteration.</param>
    /// <param name="lrMultiplier">The blob's lr_mult (LeNet: 1 for weights, 2 for biases).</param>
    /// <param name="momentum">The momentum.</param>
    /// <param name="weightDecay">The L2 weight decay for this blob (weight_decay × decay_mult).</param>
    /// <returns>The updated parameter and history, as new arrays; the arguments are not changed.</returns>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static (double[] Parameter, double[] History) CaffeSgdStep(
        double[] parameter, double[] gradient, double[] history, double rate, double lrMultiplier, double momentum, double weightDecay)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        ArgumentNullException.ThrowIfNull(gradient);
        ArgumentNullException.ThrowIfNull(history);
        CheckLength(gradient, parameter.Length, nameof(gradient));
        CheckLength(history, parameter.Length, nameof(history));

        double localRate = rate * lrMultiplier;
        var newParameter = new double[parameter.Length];
        var newHistory = new double[parameter.Length];
        for (int i = 0; i < parameter.Length; i++)
        {
            double diff = gradient[i] + weightDecay * parameter[i];
            newHistory[i] = localRate * diff + momentum * history[i];
            newParameter[i] = parameter[i] - newHistory[i];
        }
        return (newParameter, newHistory);
    }

    /// <summary>
    /// The normwise relative error <c>max_i |a_i − r_i| / max(max_i |r_i|, 1e−30)</c> of a float32 result
    /// against the reference. Where the reference is finite and the actual value is NaN or infinite the
    /// error is +∞; where the reference itself is NaN or infinite, an identical actual value (NaN for NaN,
    /// the same infinity) counts as exact and anything else gives +∞. Non-finite reference values do not
    /// enter the scale. Empty inputs give 0.
    /// </summary>
    /// <param name="actual">The values under test, any shape.</param>
    /// <param name="reference">The reference values, the same length.</param>
    /// <returns>The relative error, ≥ 0, or +∞.</returns>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> reference) => Relative(actual, reference);

    /// <summary>
    /// The normwise relative error of a float64 result against the reference; see
    /// <see cref="RelativeError(ReadOnlySpan{float}, ReadOnlySpan{double})"/>.
    /// </summary>
    /// <param name="actual">The values under test, any shape.</param>
    /// <param name="reference">The reference values, the same length.</param>
    /// <returns>The relative error, ≥ 0, or +∞.</returns>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static double RelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> reference) => Relative(actual, reference);

    private static double Relative<T>(ReadOnlySpan<T> actual, ReadOnlySpan<double> reference)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        if (actual.Length != reference.Length)
            throw new ArgumentException($"actual has {actual.Length} values but reference has {reference.Length}.", nameof(actual));
        double maxDiff = 0, scale = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!Accumulate(double.CreateTruncating(actual[i]), reference[i], ref maxDiff, ref scale)) return double.PositiveInfinity;
        }
        return maxDiff / Math.Max(scale, 1e-30);
    }

    /// <summary>Adds one pair to the running maximum difference and scale; false when the pair makes the error +∞.</summary>
    private static bool Accumulate(double a, double r, ref double maxDiff, ref double scale)
    {
        if (!double.IsFinite(r))
            return a.Equals(r); // NaN.Equals(NaN) is true; +∞ equals only +∞.
        if (!double.IsFinite(a)) return false;
        maxDiff = Math.Max(maxDiff, Math.Abs(a - r));
        scale = Math.Max(scale, Math.Abs(r));
        return true;
    }

    /// <summary>Checks a convolution's input and weights; returns the output height and width.</summary>
    private static (int OutHeight, int OutWidth) CheckConv(double[] x, int n, int c, int h, int w, double[] weight, int outChannels, int k)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        CheckPositive(n, nameof(n));
        CheckPositive(c, nameof(c));
        CheckPositive(h, nameof(h));
        CheckPositive(w, nameof(w));
        CheckPositive(outChannels, nameof(outChannels));
        CheckPositive(k, nameof(k));
        if (k > h || k > w) throw new ArgumentException($"A {k}×{k} kernel does not fit a {h}×{w} input.", nameof(k));
        CheckLength(x, Product(n, c, h, w, nameof(x)), nameof(x));
        CheckLength(weight, Product(outChannels, c, k, k, nameof(weight)), nameof(weight));
        return (h - k + 1, w - k + 1);
    }

    /// <summary>Checks a fully connected layer's input and weights.</summary>
    private static void CheckLinear(double[] x, int n, int inFeatures, double[] weight, int outFeatures)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        CheckPositive(n, nameof(n));
        CheckPositive(inFeatures, nameof(inFeatures));
        CheckPositive(outFeatures, nameof(outFeatures));
        CheckLength(x, Product(n, inFeatures, 1, 1, nameof(x)), nameof(x));
        CheckLength(weight, Product(outFeatures, inFeatures, 1, 1, nameof(weight)), nameof(weight));
    }

    private static void CheckPositive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} must be positive, not {value}.", name);
    }

    private static void CheckLength(Array array, int expected, string name)
    {
        if (array.Length != expected)
            throw new ArgumentException($"{name} has {array.Length} elements but its shape needs {expected}.", name);
    }

    /// <summary>The element count of a shape, which must fit an array index.</summary>
    private static int Product(int a, int b, int c, int d, string name)
    {
        long product = 1;
        foreach (int factor in (ReadOnlySpan<int>)[a, b, c, d])
        {
            product *= factor; // each factor is positive and the running product stays ≤ Array.MaxLength, so no overflow
            if (product > Array.MaxLength)
                throw new ArgumentException($"The shape [{a}, {b}, {c}, {d}] of {name} has more elements than an array can hold.", name);
        }
        return (int)product;
    }
}
