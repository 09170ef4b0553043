using System.IO.Compression;

namespace Sweep.Examples.TorchSharpMlp;

/// <summary>One split of MNIST as the plug-in reads it: images as raw bytes (row-major 28×28, one after another) and their labels.</summary>
/// <param name="Count">Images.</param>
/// <param name="Pixels">Count × 784 bytes.</param>
/// <param name="Labels">Count labels, 0 to 9.</param>
public sealed record MnistSplit(int Count, byte[] Pixels, byte[] Labels);

/// <summary>Reads the standard MNIST IDX files (gzipped or not) of a folder (<c>ITrialContext.DatasetPath</c>).</summary>
public static class MnistFiles
{
    /// <summary>Pixels per image: 28 × 28.</summary>
    public const int PixelsPerImage = 28 * 28;

    /// <summary>The split <paramref name="prefix"/> (<c>train</c> or <c>t10k</c>) of <paramref name="folder"/>, its first <paramref name="take"/> images (null: all).</summary>
    /// <exception cref="InvalidDataException">A file is missing or is not an IDX file of 28×28 images and matching labels.</exception>
    public static MnistSplit Read(string folder, string prefix, int? take)
    {
        var images = ReadIdx(Find(folder, $"{prefix}-images-idx3-ubyte"), 0x803);
        var labels = ReadIdx(Find(folder, $"{prefix}-labels-idx1-ubyte"), 0x801);
        int count = images.Length / PixelsPerImage;
        if (labels.Length != count) throw new InvalidDataException($"{folder}: {labels.Length} labels for {count} {prefix} images");
        int n = Math.Min(take ?? count, count);
        return new MnistSplit(n, images[..(n * PixelsPerImage)], labels[..n]);
    }

    private static string Find(string folder, string name) =>
        new[] { name, name + ".gz" }.Select(n => Path.Combine(folder, n)).FirstOrDefault(File.Exists)
        ?? throw new InvalidDataException($"{folder}: no {name}[.gz]");

    /// <summary>The data of an IDX file after its header (magic, then one big-endian size per dimension).</summary>
    private static byte[] ReadIdx(string path, int magic)
    {
        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new BinaryReader(stream);
        int BigEndian() => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(reader.ReadInt32());
        if (BigEndian() != magic) throw new InvalidDataException($"{path}: not an IDX file of the expected kind");
        int dimensions = magic & 0xff;
        long length = 1;
        for (int i = 0; i < dimensions; i++) length *= BigEndian();
        if (dimensions == 3 && length % PixelsPerImage != 0) throw new InvalidDataException($"{path}: images are not 28x28");
        var data = reader.ReadBytes(checked((int)length));
        return data.Length == length ? data : throw new InvalidDataException($"{path}: truncated");
    }
}
