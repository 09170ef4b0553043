using System.Globalization;
using System.Text;
using System.Text.Json;
using Sweep.Protocol;
using Sweep.Protocol.Training;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.Training;

/// <summary>
/// A trial's complete state at one iteration: weights, momentum histories, the sampler's
/// (epoch, cursor), and the running sums of the current interval, so a trial restored from it
/// reports exactly what an uninterrupted run would. Written atomically (temporary file, then rename).
/// </summary>
public sealed record TrainerCheckpoint(
    string SpecFingerprint,
    int Iteration,
    int Epoch,
    int Cursor,
    IntervalSums Interval,
    IReadOnlyDictionary<string, (long[] Shape, float[] Values)> Tensors)
{
    private static ReadOnlySpan<byte> Magic => "SWEEPCK1"u8;

    /// <summary>What must match for a checkpoint to continue a trial: everything that shapes its sequence of updates.</summary>
    public static string Fingerprint(TrialSpec spec) => string.Create(CultureInfo.InvariantCulture,
        $"batch={spec.BatchSize};test-batch={spec.TestBatchSize};lr={spec.BaseLr:R};test-interval={spec.TestInterval};seed={spec.Seed};" +
        $"momentum={spec.Solver.Momentum:R};decay={spec.Solver.WeightDecay:R};policy={spec.Solver.Policy};gamma={spec.Solver.Gamma:R};" +
        $"power={spec.Solver.Power:R};step={spec.Solver.StepSize};train={spec.Dataset.TrainCount};test={spec.Dataset.TestCount}");

    public void Save(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".partial";
        using (var stream = File.Create(temporary))
        using (var writer = new BinaryWriter(stream, Encoding.UTF8))
        {
            writer.Write(Magic);
            writer.Write(JsonSerializer.Serialize(new Header(SpecFingerprint, Iteration, Epoch, Cursor, Interval)));
            writer.Write(Tensors.Count);
            foreach (var (name, (shape, values)) in Tensors)
            {
                writer.Write(name);
                writer.Write(shape.Length);
                foreach (var dimension in shape) writer.Write(dimension);
                writer.Write(values.Length);
                writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            }
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Reads a checkpoint written by <see cref="Save"/>.</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <exception cref="InvalidInputException">The file does not exist.</exception>
    /// <exception cref="CheckpointUnreadableException">
    /// The file is there but is not a complete checkpoint: wrong magic, truncated, a header or a
    /// length that makes no sense, or bytes after the last tensor. Whether it belongs to the trial
    /// (its fingerprint) is for the caller to check.
    /// </exception>
    public static TrainerCheckpoint Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: checkpoint not found");
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = new BinaryReader(stream, Encoding.UTF8);
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic))
                throw new CheckpointUnreadableException(path, "not a Sweep.Actors checkpoint (wrong magic)");
            var header = JsonSerializer.Deserialize<Header>(reader.ReadString());
            if (header?.SpecFingerprint is null || header.Interval is null) throw Damaged(path, "no header");
            int count = reader.ReadInt32();
            if (count < 0 || count > stream.Length - stream.Position) throw Damaged(path, $"{count} tensors");
            var tensors = new Dictionary<string, (long[], float[])>(count);
            for (int t = 0; t < count; t++)
            {
                var name = reader.ReadString();
                int rank = reader.ReadInt32();
                if (rank < 0 || rank > MaxRank) throw Damaged(path, $"tensor '{name}' has rank {rank}");
                var shape = new long[rank];
                for (int d = 0; d < shape.Length; d++) shape[d] = reader.ReadInt64();
                int length = reader.ReadInt32();
                // Checked before allocating: a corrupt length must not ask for gigabytes.
                if (length < 0 || (long)length * sizeof(float) > stream.Length - stream.Position)
                    throw Damaged(path, $"tensor '{name}' claims {length} values, the file has {stream.Length - stream.Position} bytes left");
                var values = new float[length];
                var bytes = reader.ReadBytes(length * sizeof(float));
                if (bytes.Length != length * sizeof(float)) throw new EndOfStreamException();
                Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
                tensors[name] = (shape, values);
            }
            if (stream.Position != stream.Length) throw Damaged(path, $"{stream.Length - stream.Position} bytes after the last tensor");
            return new TrainerCheckpoint(header.SpecFingerprint, header.Iteration, header.Epoch, header.Cursor, header.Interval, tensors);
        }
        catch (Exception e) when (e is EndOfStreamException or JsonException or IOException or FormatException or ArgumentException or OverflowException)
        {
            throw new CheckpointUnreadableException(path, $"damaged checkpoint ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>More dimensions than any tensor of a checkpoint has: beyond it the file is corrupt.</summary>
    private const int MaxRank = 8;

    private static CheckpointUnreadableException Damaged(string path, string what) => new(path, $"damaged checkpoint ({what})");

    /// <summary>Copies a tensor off the device into checkpoint form.</summary>
    public static (long[] Shape, float[] Values) Capture(Tensor tensor)
    {
        using var onCpu = tensor.detach().cpu().contiguous();
        return (tensor.shape, onCpu.data<float>().ToArray());
    }

    /// <summary>Writes checkpointed values back into <paramref name="target"/>, shape checked.</summary>
    public void RestoreInto(string name, Tensor target)
    {
        if (!Tensors.TryGetValue(name, out var saved))
            throw new InvalidInputException($"checkpoint has no tensor '{name}'");
        if (!saved.Shape.SequenceEqual(target.shape))
            throw new InvalidInputException($"checkpoint tensor '{name}' has shape [{string.Join(",", saved.Shape)}], the model needs [{string.Join(",", target.shape)}]");
        using var _ = no_grad();
        using var source = tensor(saved.Values, saved.Shape);
        target.copy_(source);
    }

    private sealed record Header(string SpecFingerprint, int Iteration, int Epoch, int Cursor, IntervalSums Interval);
}

/// <summary>Running sums of the training steps since the last test point.</summary>
public sealed record IntervalSums(double LossSum, long Correct, long Seen, int Steps, double Seconds)
{
    public static IntervalSums Empty { get; } = new(0, 0, 0, 0, 0);

    public IntervalSums Add(double loss, long correct, long seen) => this with
    {
        LossSum = LossSum + loss,
        Correct = Correct + correct,
        Seen = Seen + seen,
        Steps = Steps + 1,
    };
}
