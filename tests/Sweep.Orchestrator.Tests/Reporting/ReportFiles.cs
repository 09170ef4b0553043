using System.Buffers.Binary;
using System.Text;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>Reading the report's files back: RFC 4180 CSV and PNG headers.</summary>
public static class ReportFiles
{
    /// <summary>Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF) into rows of fields.</summary>
    public static List<string[]> ParseCsv(string text)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add(row.ToArray());
                row.Clear();
                i++;
            }
            else field.Append(c);
        }
        Assert.False(quoted, "unterminated quoted field");
        Assert.True(field.Length == 0 && row.Count == 0, "the last row must end with CRLF");
        return rows;
    }

    /// <summary>Rows as dictionaries keyed by the header row.</summary>
    public static List<Dictionary<string, string>> CsvRecords(string path)
    {
        var rows = ParseCsv(File.ReadAllText(path));
        var header = rows[0];
        Assert.All(rows, r => Assert.Equal(header.Length, r.Length));
        return rows.Skip(1).Select(r => header.Zip(r).ToDictionary(x => x.Item1, x => x.Item2)).ToList();
    }

    /// <summary>Asserts a real PNG file: the signature, an IHDR chunk first, and returns its width and height.</summary>
    public static (int Width, int Height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 33, $"{path} is too short for a PNG");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.Equal("IHDR", Encoding.ASCII.GetString(bytes, 12, 4));
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16, 4)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20, 4)));
    }
}
