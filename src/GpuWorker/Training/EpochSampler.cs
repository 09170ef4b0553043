namespace Sweep.GpuWorker.Training;

/// <summary>
/// Random mini-batches without replacement: each epoch is a fresh permutation derived from
/// (seed, epoch) alone, and a batch that runs past the end continues into the next epoch, as
/// Caffe's data layer wraps around. Its whole state is (epoch, cursor), so a checkpoint that
/// stores those two resumes the exact same sequence of batches.
/// </summary>
public sealed class EpochSampler
{
    private readonly int count;
    private readonly int seed;
    private int[] order;

    public EpochSampler(int count, int seed, int epoch = 0, int cursor = 0)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count));
        if (cursor < 0 || cursor >= count) throw new ArgumentOutOfRangeException(nameof(cursor));
        this.count = count;
        this.seed = seed;
        Epoch = epoch;
        Cursor = cursor;
        order = Permutation(epoch);
    }

    public int Epoch { get; private set; }
    public int Cursor { get; private set; }

    /// <summary>The next <paramref name="batchSize"/> sample indices.</summary>
    public long[] Next(int batchSize)
    {
        var batch = new long[batchSize];
        for (int i = 0; i < batchSize; i++)
        {
            batch[i] = order[Cursor++];
            if (Cursor == count)
            {
                Epoch++;
                Cursor = 0;
                order = Permutation(Epoch);
            }
        }
        return batch;
    }

    /// <summary>The indices <see cref="Next"/> would return, without moving.</summary>
    public long[] Peek(int batchSize) => new EpochSampler(count, seed, Epoch, Cursor).Next(batchSize);

    private int[] Permutation(int epoch)
    {
        // A seeded System.Random runs the same legacy algorithm in every process and .NET version
        // (HashCode would not: it is randomised per process). Deriving it from (seed, epoch) keeps
        // each epoch's order independent of how many batches were drawn before.
        var random = new Random(unchecked(seed * 100_003 + epoch * 7_919) & int.MaxValue);
        var permutation = Enumerable.Range(0, count).ToArray();
        random.Shuffle(permutation);
        return permutation;
    }
}
