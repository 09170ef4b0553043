using Sweep.Protocol;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Data;

/// <summary>One split of MNIST: images as raw bytes (row-major 28×28) and their labels.</summary>
public sealed record MnistSplit(int Count, byte[] Pixels, byte[] Labels)
{
    public const int Side = 28;
    public const int PixelsPerImage = Side * Side;
}

/// <summary>
/// The four standard MNIST files in one folder (<c>train-images-idx3-ubyte[.gz]</c>,
/// <c>train-labels-idx1-ubyte[.gz]</c>, <c>t10k-images-idx3-ubyte[.gz]</c>, <c>t10k-labels-idx1-ubyte[.gz]</c>),
/// checked for the shapes LeNet needs. The embedded default lives in <c>data/mnist-10k</c>; the full
/// 60,000/10,000 set works the same way.
/// </summary>
public sealed record MnistData(MnistSplit Train, MnistSplit Test)
{
    /// <summary>The embedded 8,000/2,000 subset, copied next to every program that references this project.</summary>
    public static string EmbeddedPath { get; } = Path.Combine(AppContext.BaseDirectory, "data", "mnist-10k");

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<DatasetSpec, Lazy<MnistData>> Loaded = new();

    /// <summary>
    /// The dataset of <paramref name="spec"/>, read from disk once per process and shared by every
    /// trial and self-test that asks for it (the data is never modified). Errors as <see cref="Load"/>.
    /// </summary>
    public static MnistData Shared(DatasetSpec spec) => Loaded.GetOrAdd(spec, key => new Lazy<MnistData>(() => Load(key))).Value;

    public static MnistData Load(DatasetSpec spec)
    {
        if (!Directory.Exists(spec.Path))
            throw new InvalidInputException($"{spec.Path}: dataset folder not found");
        var train = LoadSplit(spec.Path, "train", spec.TrainCount, "train-count");
        var test = LoadSplit(spec.Path, "t10k", spec.TestCount, "test-count");
        return new MnistData(train, test);
    }

    private static MnistSplit LoadSplit(string folder, string prefix, int? take, string countKey)
    {
        var images = IdxFile.ReadImages(FindFile(folder, prefix, "images-idx3-ubyte"));
        var labels = IdxFile.ReadLabels(FindFile(folder, prefix, "labels-idx1-ubyte"));
        if (images.Rows != MnistSplit.Side || images.Columns != MnistSplit.Side)
            throw new InvalidInputException($"{images.Path}: images are {images.Rows}x{images.Columns}, LeNet needs 28x28");
        if (labels.Values.Length != images.Count)
            throw new InvalidInputException($"{labels.Path}: {labels.Values.Length} labels for the {images.Count} images of {images.Path}");
        int bad = Array.FindIndex(labels.Values, l => l > 9);
        if (bad >= 0)
            throw new InvalidInputException($"{labels.Path}: label {labels.Values[bad]} at index {bad} is not a digit 0-9");
        if (images.Count == 0)
            throw new InvalidInputException($"{images.Path}: holds no images");
        if (take > images.Count)
            throw new InvalidInputException($"{images.Path}: {countKey} {take} is more than the {images.Count} images it holds");
        int count = take ?? images.Count;
        return new MnistSplit(count, images.Pixels[..(count * MnistSplit.PixelsPerImage)], labels.Values[..count]);
    }

    /// <summary>Accepts the names of the original download and of common copies, gzipped or not.</summary>
    private static string FindFile(string folder, string prefix, string kind)
    {
        string[] names = [$"{prefix}-{kind}", $"{prefix}-{kind.Replace("-idx", ".idx")}"];
        foreach (var name in names)
        {
            foreach (var candidate in new[] { name + ".gz", name })
            {
                var path = Path.Combine(folder, candidate);
                if (File.Exists(path)) return path;
            }
        }
        throw new InvalidInputException($"{Path.Combine(folder, names[0])}[.gz]: file not found");
    }
}
