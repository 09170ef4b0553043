using System.Buffers.Binary;
using System.IO.Compression;
using Sweep.Protocol;

namespace Sweep.GpuWorker.Data;

/// <summary>
/// Reads the IDX format MNIST is distributed in (big-endian header, then unsigned bytes), gzipped
/// or not. Every problem becomes an <see cref="InvalidInputException"/> naming the file.
/// </summary>
public static class IdxFile
{
    private const int UnsignedByteImages = 0x00000803;
    private const int UnsignedByteLabels = 0x00000801;

    /// <summary>Images as one array of <c>count × rows × columns</c> bytes, row-major.</summary>
    public sealed record Images(string Path, int Count, int Rows, int Columns, byte[] Pixels);

    /// <summary>One label byte per image.</summary>
    public sealed record Labels(string Path, byte[] Values);

    public static Images ReadImages(string path)
    {
        var bytes = ReadAll(path);
        RequireHeader(path, bytes, UnsignedByteImages, headerLength: 16, "images (0x00000803)");
        int count = ReadCount(path, bytes, 4), rows = ReadCount(path, bytes, 8), columns = ReadCount(path, bytes, 12);
        long expected = (long)count * rows * columns;
        long present = bytes.Length - 16;
        if (present < expected)
            throw new InvalidInputException($"{path}: truncated: the header promises {count} images of {rows}x{columns} ({expected} bytes) but {present} bytes follow");
        if (present > expected)
            throw new InvalidInputException($"{path}: {present - expected} bytes after the {count} images the header declares");
        return new Images(path, count, rows, columns, bytes.AsSpan(16).ToArray());
    }

    public static Labels ReadLabels(string path)
    {
        var bytes = ReadAll(path);
        RequireHeader(path, bytes, UnsignedByteLabels, headerLength: 8, "labels (0x00000801)");
        int count = ReadCount(path, bytes, 4);
        long present = bytes.Length - 8;
        if (present < count)
            throw new InvalidInputException($"{path}: truncated: the header promises {count} labels but {present} bytes follow");
        if (present > count)
            throw new InvalidInputException($"{path}: {present - count} bytes after the {count} labels the header declares");
        return new Labels(path, bytes.AsSpan(8).ToArray());
    }

    private static byte[] ReadAll(string path)
    {
        if (Directory.Exists(path)) throw new InvalidInputException($"{path}: is a folder, expected an IDX file");
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: file not found");
        try
        {
            var raw = File.ReadAllBytes(path);
            bool gzipped = raw.Length >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;
            if (!gzipped) return raw;
            using var input = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            using var output = new MemoryStream(raw.Length * 4);
            input.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidInputException($"{path}: not a valid gzip file ({e.Message})");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"{path}: cannot be read ({e.Message})");
        }
    }

    private static void RequireHeader(string path, byte[] bytes, int magic, int headerLength, string what)
    {
        if (bytes.Length < 4)
            throw new InvalidInputException($"{path}: truncated: {bytes.Length} bytes is shorter than an IDX magic number");
        int found = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (found != magic)
            throw new InvalidInputException($"{path}: wrong magic number 0x{found:x8}, expected IDX {what}");
        if (bytes.Length < headerLength)
            throw new InvalidInputException($"{path}: truncated: {bytes.Length} bytes is shorter than the {headerLength}-byte IDX header");
    }

    private static int ReadCount(string path, byte[] bytes, int offset)
    {
        int value = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(offset));
        if (value < 0) throw new InvalidInputException($"{path}: negative dimension {value} in the header");
        return value;
    }
}
