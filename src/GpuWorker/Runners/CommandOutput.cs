using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Sweep.GpuWorker.Runners;

/// <summary>A line of a command trial's standard output that belongs to the protocol (docs/command-trials.md).</summary>
internal abstract record CommandReport;

/// <summary>
/// A test point: <c>{"iteration": 100, "test-accuracy": 0.97, "train-loss": 0.21}</c>. Only the
/// metrics the line holds are in <paramref name="Metrics"/> (by key, e.g. <c>test-loss</c>), each a
/// double that may be NaN or infinite as the program wrote it.
/// </summary>
internal sealed record TestPointReport(int Iteration, IReadOnlyDictionary<string, double> Metrics) : CommandReport;

/// <summary>The program wrote a checkpoint of iteration <paramref name="Iteration"/> into its checkpoint directory: <c>{"checkpoint": 300}</c>.</summary>
internal sealed record CheckpointReport(int Iteration) : CommandReport;

/// <summary>
/// Reads the JSON lines a command trial writes on its standard output. A line is part of the
/// protocol when it is a JSON object with a whole, non-negative <c>iteration</c> (a test point) or,
/// without one, a whole, non-negative <c>checkpoint</c>; anything else (plain text, other JSON) is
/// the program's log. Numbers may also be the bare tokens <c>NaN</c>, <c>Infinity</c> and
/// <c>-Infinity</c>, as Python's json module writes them.
/// </summary>
internal static class CommandOutput
{
    public const string TrainLoss = "train-loss";
    public const string TrainAccuracy = "train-accuracy";
    public const string TestLoss = "test-loss";
    public const string TestAccuracy = "test-accuracy";
    public const string LearningRate = "learning-rate";

    /// <summary>The metrics a test point may carry, in the order a non-finite one is looked for.</summary>
    public static readonly IReadOnlyList<string> MetricKeys = [TrainLoss, TestLoss, TrainAccuracy, TestAccuracy, LearningRate];

    private static readonly string[] NamedLiterals = ["-Infinity", "Infinity", "NaN"];

    /// <summary>The report <paramref name="line"/> makes, or null when it is a log line.</summary>
    public static CommandReport? Parse(string line)
    {
        var text = line.Trim();
        if (text.Length < 2 || text[0] != '{' || text[^1] != '}') return null;
        try
        {
            using var document = JsonDocument.Parse(QuoteNamedLiterals(text));
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return null;
            if (root.TryGetProperty("iteration", out var iteration))
            {
                if (WholeNumber(iteration) is not { } at) return null;
                var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
                foreach (var key in MetricKeys)
                {
                    if (root.TryGetProperty(key, out var value) && Number(value) is { } number) metrics[key] = number;
                }
                return new TestPointReport(at, metrics);
            }
            if (root.TryGetProperty("checkpoint", out var checkpoint) && WholeNumber(checkpoint) is { } saved) return new CheckpointReport(saved);
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Puts the bare tokens NaN, Infinity and -Infinity outside strings in quotes, so System.Text.Json
    /// reads the line (it accepts those only quoted, and <see cref="Number"/> takes the quoted forms).
    /// </summary>
    internal static string QuoteNamedLiterals(string json)
    {
        StringBuilder? quoted = null;
        bool inString = false, escaped = false;
        for (int i = 0; i < json.Length; i++)
        {
            char c = json[i];
            if (inString)
            {
                if (escaped) escaped = false;
                else if (c == '\\') escaped = true;
                else if (c == '"') inString = false;
                quoted?.Append(c);
                continue;
            }
            if (c == '"')
            {
                inString = true;
                quoted?.Append(c);
                continue;
            }
            var literal = NamedLiterals.FirstOrDefault(name => IsTokenAt(json, i, name));
            if (literal is null)
            {
                quoted?.Append(c);
                continue;
            }
            quoted ??= new StringBuilder(json, 0, i, json.Length + 8);
            quoted.Append('"').Append(literal).Append('"');
            i += literal.Length - 1;
        }
        return quoted?.ToString() ?? json;
    }

    private static bool IsTokenAt(string json, int at, string token) =>
        string.CompareOrdinal(json, at, token, 0, token.Length) == 0
        && (at == 0 || !IsWordCharacter(json[at - 1]))
        && (at + token.Length == json.Length || !IsWordCharacter(json[at + token.Length]));

    private static bool IsWordCharacter(char c) => char.IsLetterOrDigit(c) || c is '_' or '.' or '-' or '+';

    /// <summary>A JSON number, or one of the quoted named literals; null for anything else (a string, null, an object).</summary>
    private static double? Number(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Number when value.TryGetDouble(out var number) => number,
        // A number too large for a double (1e999) is infinite, as Python reads it.
        JsonValueKind.Number => value.GetRawText().TrimStart().StartsWith('-') ? double.NegativeInfinity : double.PositiveInfinity,
        JsonValueKind.String => value.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            _ => null,
        },
        _ => null,
    };

    /// <summary>A whole number from 0 to int.MaxValue (100 and 100.0 both), else null.</summary>
    private static int? WholeNumber(JsonElement value) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var number)
        && number >= 0 && number <= int.MaxValue && Math.Floor(number) == number
            ? (int)number
            : null;

    /// <summary>How a non-finite value is named in a divergence's reason: NaN, Infinity or -Infinity.</summary>
    public static string Name(double value) =>
        double.IsNaN(value) ? "NaN" : double.IsPositiveInfinity(value) ? "Infinity" : double.IsNegativeInfinity(value) ? "-Infinity" : value.ToString("R", CultureInfo.InvariantCulture);
}
