using Sweep.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sweep.Examples.TorchSharpMlp;

/// <summary>
/// The network: 784 → <c>hidden</c> → ReLU → dropout → 10, its layers as fields (TorchSharp registers
/// them by name). Dropout is applied with a mask the caller draws (<see cref="forward(Tensor, Tensor?)"/>),
/// so that the mask of each iteration comes from a generator seeded by the iteration: a resumed run
/// draws exactly the masks an uninterrupted one does, with no generator state to checkpoint.
/// </summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly ReLU relu = nn.ReLU();
    private readonly Linear fc2;

    /// <param name="hidden">Units of the hidden layer.</param>
    public Mlp(int hidden) : base(nameof(Mlp))
    {
        fc1 = nn.Linear(MnistFiles.PixelsPerImage, hidden);
        fc2 = nn.Linear(hidden, 10);
        RegisterComponents();
    }

    /// <summary>Logits [N, 10] of images [N, 784], without dropout (evaluation).</summary>
    public override Tensor forward(Tensor input) => forward(input, null);

    /// <summary>Logits [N, 10] of images [N, 784]; <paramref name="keep"/> [N, hidden] multiplies the hidden units (the dropout mask, already scaled by 1/(1−p)); null: no dropout.</summary>
    public Tensor forward(Tensor input, Tensor? keep)
    {
        var hidden = relu.call(fc1.call(input));
        return fc2.call(keep is null ? hidden : hidden.mul(keep));
    }

    /// <summary>Weights uniform in ±1/√fan-in, biases 0, drawn from <paramref name="generator"/> in parameter order.</summary>
    public void Initialize(Generator generator)
    {
        using var _ = no_grad();
        foreach (var (name, parameter) in named_parameters())
        {
            if (name.EndsWith("bias", StringComparison.Ordinal)) parameter.zero_();
            else parameter.uniform_(-1.0 / Math.Sqrt(parameter.shape[1]), 1.0 / Math.Sqrt(parameter.shape[1]), generator);
        }
    }
}

/// <summary>
/// A plug-in model (<c>model = plugin</c>, docs/plugins.md): the MLP <see cref="Mlp"/> trained with
/// SGD with momentum and weight decay (the sweep's <c>solver</c>: momentum, weight-decay and the
/// learning-rate schedule) on the trial's MNIST, in float32. Named parameters: <c>dropout</c> (real,
/// 0 ≤ p &lt; 1, required) and <c>hidden</c> (integer, default 128). Deterministic: the same
/// parameters, seed and thread count give the same numbers, and a run resumed from a checkpoint gives
/// exactly the numbers of an uninterrupted one (the checkpoint holds the weights, the momentum, the
/// position in the epoch's order and the running sums of the current interval; the epoch's order and
/// each iteration's dropout mask are drawn from generators seeded by the seed and the epoch or iteration).
/// </summary>
public sealed class MlpModel : ITrialModel
{
    private const int Magic = 0x4d4c5031; // "MLP1"

    /// <inheritdoc/>
    public void Train(ITrialContext context)
    {
        double dropout = context.GetReal("dropout");
        if (dropout is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(context), dropout, "dropout must be at least 0 and below 1");
        int hidden = context.ParameterNames.Contains("hidden") ? checked((int)context.GetInteger("hidden")) : 128;
        var device = torch.device(context.Device);
        var trainSplit = MnistFiles.Read(context.DatasetPath, "train", context.TrainCount);
        var testSplit = MnistFiles.Read(context.DatasetPath, "t10k", context.TestCount);

        using var trainImages = Images(trainSplit, device);
        using var trainLabels = Labels(trainSplit, device);
        using var testImages = Images(testSplit, device);
        using var testLabels = Labels(testSplit, device);
        using var model = new Mlp(hidden);
        model.to(device);
        var parameters = model.named_parameters().ToList();
        var momentum = parameters.Select(p => zeros_like(p.parameter).DetachFromDisposeScope()).ToList();
        var state = new State();

        try
        {
            if (context.ResumePath is { } resume)
            {
                Load(resume, context.ResumeIteration, parameters.Select(p => (Tensor)p.parameter).Concat(momentum).ToList(), state);
            }
            else
            {
                using (var generator = new Generator((ulong)context.Seed, device)) model.Initialize(generator);
                // Test point 0: the first batch's loss under the initial weights (no update, no dropout).
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var (images, labels) = Batch(trainImages, trainLabels, Order(context.Seed, 0, trainSplit.Count).Take(context.BatchSize).Select(i => (long)i).ToArray(), device);
                var logits = model.call(images);
                double loss = nn.functional.cross_entropy(logits, labels).item<float>();
                double accuracy = logits.argmax(1).eq(labels).sum().item<long>() / (double)context.BatchSize;
                var (testLoss, testAccuracy) = Evaluate(model, testImages, testLabels, context.TestBatchSize);
                context.Report(0, testAccuracy, testLoss, loss, accuracy, context.LearningRateAt(0));
            }

            context.Log(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{(context.ResumePath is null ? "training from scratch" : $"resuming from iteration {state.Iteration}")}: hidden {hidden}, dropout {dropout}, on {context.Device}"));
            var order = Order(context.Seed, state.Epoch, trainSplit.Count);
            while (state.Iteration < context.MaxIter)
            {
                if (context.Cancellation.IsCancellationRequested)
                {
                    Save(context, parameters.Select(p => (Tensor)p.parameter).Concat(momentum).ToList(), state);
                    return;
                }
                using (var scope = NewDisposeScope())
                {
                    var indices = new long[context.BatchSize];
                    for (int i = 0; i < indices.Length; i++)
                    {
                        if (state.Cursor == trainSplit.Count)
                        {
                            state.Epoch++;
                            state.Cursor = 0;
                            order = Order(context.Seed, state.Epoch, trainSplit.Count);
                        }
                        indices[i] = order[state.Cursor++];
                    }
                    var (images, labels) = Batch(trainImages, trainLabels, indices, device);
                    Tensor? keep = null;
                    if (dropout > 0)
                    {
                        using var generator = new Generator(MaskSeed(context.Seed, state.Iteration), device);
                        keep = empty([context.BatchSize, hidden], device: device).uniform_(0, 1, generator).ge(dropout).to(ScalarType.Float32).div_(1 - dropout);
                    }
                    var logits = model.forward(images, keep);
                    var loss = nn.functional.cross_entropy(logits, labels);
                    model.zero_grad();
                    loss.backward();
                    double rate = context.LearningRateAt(state.Iteration);
                    using (no_grad())
                    {
                        for (int i = 0; i < parameters.Count; i++)
                        {
                            var weight = parameters[i].parameter;
                            // Caffe's update: v = m·v + lr·(g + wd·w); w -= v.
                            momentum[i].mul_(context.Momentum).add_(weight.grad!.add(weight, alpha: context.WeightDecay), alpha: rate);
                            weight.sub_(momentum[i]);
                        }
                    }
                    state.LossSum += loss.item<float>();
                    state.Correct += logits.argmax(1).eq(labels).sum().item<long>();
                    state.Steps++;
                }
                state.Iteration++;

                if (state.Iteration % context.TestInterval == 0 || state.Iteration == context.MaxIter)
                {
                    var (testLoss, testAccuracy) = Evaluate(model, testImages, testLabels, context.TestBatchSize);
                    context.Report(state.Iteration, testAccuracy, testLoss, state.LossSum / state.Steps,
                        state.Correct / (double)(state.Steps * context.BatchSize), context.LearningRateAt(state.Iteration));
                    state.LossSum = 0;
                    state.Correct = 0;
                    state.Steps = 0;
                    if (state.Iteration < context.MaxIter) Save(context, parameters.Select(p => (Tensor)p.parameter).Concat(momentum).ToList(), state);
                }
            }
        }
        finally
        {
            foreach (var buffer in momentum) buffer.Dispose();
        }
    }

    /// <summary>Where the run is: what a checkpoint holds besides the tensors.</summary>
    private sealed class State
    {
        public int Iteration;
        public int Epoch;
        public int Cursor;
        public double LossSum;
        public long Correct;
        public int Steps;
    }

    /// <summary>The order of the training images in <paramref name="epoch"/>: a permutation from a generator seeded by the seed and the epoch.</summary>
    private static int[] Order(int seed, int epoch, int count)
    {
        var order = Enumerable.Range(0, count).ToArray();
        new Random(HashCode32(seed, epoch)).Shuffle(order);
        return order;
    }

    private static ulong MaskSeed(int seed, int iteration) => (ulong)(uint)HashCode32(seed, ~iteration) * 2654435761UL + 1;

    /// <summary>A fixed mix of two integers (not <see cref="HashCode"/>, which differs per process).</summary>
    private static int HashCode32(int a, int b) => unchecked((int)((uint)a * 2246822519U ^ (uint)b * 3266489917U) & int.MaxValue);

    private static Tensor Images(MnistSplit split, Device device)
    {
        using var bytes = tensor(split.Pixels, [split.Count, MnistFiles.PixelsPerImage], dtype: ScalarType.Byte);
        return bytes.to(ScalarType.Float32).div_(255.0).to(device).DetachFromDisposeScope();
    }

    private static Tensor Labels(MnistSplit split, Device device)
    {
        using var bytes = tensor(split.Labels, dtype: ScalarType.Byte);
        return bytes.to(ScalarType.Int64).to(device).DetachFromDisposeScope();
    }

    private static (Tensor Images, Tensor Labels) Batch(Tensor images, Tensor labels, long[] indices, Device device)
    {
        var index = tensor(indices, device: device);
        return (images.index_select(0, index), labels.index_select(0, index));
    }

    /// <summary>Mean loss and accuracy over the whole test split, in batches of <paramref name="batchSize"/>, without dropout.</summary>
    private static (double Loss, double Accuracy) Evaluate(Mlp model, Tensor images, Tensor labels, int batchSize)
    {
        using var _ = no_grad();
        long count = images.shape[0];
        double lossSum = 0;
        long correct = 0;
        for (long start = 0; start < count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            long length = Math.Min(batchSize, count - start);
            var batchLabels = labels.narrow(0, start, length);
            var logits = model.call(images.narrow(0, start, length));
            lossSum += nn.functional.cross_entropy(logits, batchLabels, reduction: nn.Reduction.Sum).item<float>();
            correct += logits.argmax(1).eq(batchLabels).sum().item<long>();
        }
        return (lossSum / count, (double)correct / count);
    }

    /// <summary>Writes the checkpoint of <paramref name="state"/>'s iteration (to a temporary name, then renamed) and tells the sweep; nothing when the run keeps no checkpoints.</summary>
    private static void Save(ITrialContext context, IReadOnlyList<Tensor> tensors, State state)
    {
        if (context.CheckpointPath(state.Iteration) is not { } path) return;
        string partial = path + ".partial";
        using (var writer = new BinaryWriter(File.Create(partial)))
        {
            writer.Write(Magic);
            writer.Write(state.Iteration);
            writer.Write(state.Epoch);
            writer.Write(state.Cursor);
            writer.Write(state.LossSum);
            writer.Write(state.Correct);
            writer.Write(state.Steps);
            writer.Write(tensors.Count);
            foreach (var t in tensors)
            {
                using var onCpu = t.detach().cpu().contiguous();
                var values = onCpu.data<float>().ToArray();
                writer.Write(values.Length);
                foreach (var value in values) writer.Write(value);
            }
        }
        File.Move(partial, path, overwrite: true);
        context.Checkpointed(state.Iteration);
    }

    /// <summary>Reads the checkpoint at <paramref name="path"/> back into <paramref name="tensors"/> and <paramref name="state"/>.</summary>
    /// <exception cref="CheckpointUnreadableException">The file is missing, truncated, or not this model's checkpoint of <paramref name="iteration"/> (when given).</exception>
    private static void Load(string path, int? iteration, IReadOnlyList<Tensor> tensors, State state)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            if (reader.ReadInt32() != Magic) throw new CheckpointUnreadableException($"{path} is not a checkpoint of {nameof(MlpModel)}");
            state.Iteration = reader.ReadInt32();
            if (iteration is not null && state.Iteration != iteration) throw new CheckpointUnreadableException($"{path} holds iteration {state.Iteration}, not {iteration}");
            state.Epoch = reader.ReadInt32();
            state.Cursor = reader.ReadInt32();
            state.LossSum = reader.ReadDouble();
            state.Correct = reader.ReadInt64();
            state.Steps = reader.ReadInt32();
            if (reader.ReadInt32() != tensors.Count) throw new CheckpointUnreadableException($"{path} holds another network");
            using var _ = no_grad();
            foreach (var t in tensors)
            {
                int length = reader.ReadInt32();
                if (length != t.numel()) throw new CheckpointUnreadableException($"{path} holds another network (a tensor of {length} values for {t.numel()})");
                var values = new float[length];
                for (int i = 0; i < length; i++) values[i] = reader.ReadSingle();
                using var source = tensor(values, t.shape);
                t.copy_(source);
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException)
        {
            throw new CheckpointUnreadableException($"{path}: {e.GetType().Name}: {e.Message}");
        }
    }
}
