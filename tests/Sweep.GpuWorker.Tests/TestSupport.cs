using System.Buffers.Binary;
using System.IO.Compression;

namespace Sweep.GpuWorker.Tests;

/// <summary>A folder that is deleted after the test.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("sweep-tests-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Writes IDX files the way MNIST is distributed, so tests can make good and broken ones.</summary>
public static class IdxWriter
{
    public static byte[] Images(int count, int rows, int columns, Func<int, byte>? pixel = null, int magic = 0x00000803)
    {
        var bytes = new byte[16 + count * rows * columns];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), columns);
        for (int i = 16; i < bytes.Length; i++) bytes[i] = pixel?.Invoke(i - 16) ?? (byte)(i % 256);
        return bytes;
    }

    public static byte[] Labels(params byte[] labels)
    {
        var bytes = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 0x00000801);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), labels.Length);
        labels.CopyTo(bytes, 8);
        return bytes;
    }

    public static byte[] Gzip(byte[] raw)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest)) gzip.Write(raw);
        return output.ToArray();
    }

    /// <summary>A complete dataset folder of <paramref name="train"/> and <paramref name="test"/> 28×28 images.</summary>
    public static void Dataset(string folder, int train, int test, bool gzip = true)
    {
        void Write(string name, byte[] raw) => File.WriteAllBytes(System.IO.Path.Combine(folder, gzip ? name + ".gz" : name), gzip ? Gzip(raw) : raw);
        Write("train-images-idx3-ubyte", Images(train, 28, 28));
        Write("train-labels-idx1-ubyte", Labels(Enumerable.Range(0, train).Select(i => (byte)(i % 10)).ToArray()));
        Write("t10k-images-idx3-ubyte", Images(test, 28, 28));
        Write("t10k-labels-idx1-ubyte", Labels(Enumerable.Range(0, test).Select(i => (byte)(i % 10)).ToArray()));
    }
}

/// <summary>
/// LibTorch's thread count is process-wide: tests that train run one at a time with the same
/// count, so the determinism they assert is not disturbed by a neighbour.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchCollection
{
    public const string Name = "LibTorch";
    public const int Threads = 2;
}
