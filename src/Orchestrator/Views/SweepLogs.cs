using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Sweep.Orchestrator.Hosting;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Views;

/// <summary>
/// `sweep logs`: one sweep's (or one trial's) lines from the compact-JSON log files in
/// DATA-DIR/logs, in time order, rendered for people; with follow, new lines as they are written.
/// </summary>
public static partial class SweepLogs
{
    /// <summary>One log event of a sweep, rendered: when, its level, the trial it is about (if any) and the message.</summary>
    public sealed record LogLine(DateTimeOffset At, string Level, string? Trial, string Message)
    {
        public override string ToString() => $"{At.LocalDateTime:yyyy-MM-dd HH:mm:ss.fff} [{Abbreviate(Level)}] {Message}";
    }

    private static readonly TimeSpan FollowPoll = TimeSpan.FromMilliseconds(250);

    public static async Task<int> RunAsync(JournalSettings journal, string sweepId, string? trialName, bool follow, TextWriter output, CancellationToken interrupt)
    {
        var folder = SweepLogging.Directory(journal);
        if (!Directory.Exists(folder)) throw new InvalidInputException($"{folder}: no logs here (logs are written by the processes that run trials)");
        var offsets = new Dictionary<string, long>();
        var first = Read(folder, offsets, sweepId, trialName);
        if (first.Count == 0 && !follow)
            throw new InvalidInputException($"{folder}: no log lines for sweep '{sweepId}'" + (trialName is null ? "" : $" and trial '{trialName}'"));
        Print(first, output);
        while (follow && !interrupt.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(FollowPoll, interrupt);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            Print(Read(folder, offsets, sweepId, trialName), output);
        }
        return 0;
    }

    private static void Print(List<LogLine> lines, TextWriter output)
    {
        foreach (var line in lines.OrderBy(l => l.At)) output.WriteLine(line);
        output.Flush();
    }

    /// <summary>
    /// The matching lines written since the offsets recorded for each file (pass an empty dictionary
    /// for everything); a line still being written waits for the next read.
    /// </summary>
    public static List<LogLine> Read(string folder, Dictionary<string, long> offsets, string sweepId, string? trialName)
    {
        var found = new List<LogLine>();
        if (!Directory.Exists(folder)) return found;
        foreach (var file in Directory.GetFiles(folder, "*.json").Order(StringComparer.Ordinal))
        {
            long offset = offsets.GetValueOrDefault(file);
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (stream.Length <= offset) continue;
            stream.Seek(offset, SeekOrigin.Begin);
            var bytes = new byte[stream.Length - offset];
            stream.ReadExactly(bytes);
            int complete = Array.LastIndexOf(bytes, (byte)'\n') + 1;
            offsets[file] = offset + complete;
            foreach (var line in System.Text.Encoding.UTF8.GetString(bytes, 0, complete).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (Parse(line, sweepId, trialName) is { } entry) found.Add(entry);
            }
        }
        return found;
    }

    private static LogLine? Parse(string line, string sweepId, string? trialName)
    {
        try
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            if (!root.TryGetProperty("SweepId", out var sweep) || sweep.GetString() != sweepId) return null;
            string? trial = root.TryGetProperty("TrialName", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (trialName is not null && trial != trialName) return null;
            var at = root.GetProperty("@t").GetDateTimeOffset();
            var level = root.TryGetProperty("@l", out var l) ? l.GetString() ?? "Information" : "Information";
            var message = Render(root.TryGetProperty("@mt", out var mt) ? mt.GetString() ?? "" : "", root);
            var exception = root.TryGetProperty("@x", out var x) ? " " + (x.GetString() ?? "").Split('\n')[0] : "";
            // One line per entry, whatever a trial name holds (a line break, an escape sequence).
            return new LogLine(at, level, trial, SafeText.Line(message) + exception);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or FormatException or InvalidOperationException)
        {
            return null; // not one of ours
        }
    }

    /// <summary>Fills a message template's holes ({Name}, {Name:format}, {0}) with the event's properties.</summary>
    private static string Render(string template, JsonElement properties) =>
        Hole().Replace(template, match =>
        {
            var name = match.Groups["name"].Value;
            if (!properties.TryGetProperty(name, out var value)) return match.Value;
            return value.ValueKind switch
            {
                JsonValueKind.String => value.GetString()!,
                JsonValueKind.Number when match.Groups["format"].Success && value.TryGetDouble(out var d) => d.ToString(match.Groups["format"].Value, CultureInfo.InvariantCulture),
                _ => value.GetRawText(),
            };
        });

    private static string Abbreviate(string level) => level switch
    {
        "Verbose" => "VRB",
        "Debug" => "DBG",
        "Information" => "INF",
        "Warning" => "WRN",
        "Error" => "ERR",
        "Fatal" => "FTL",
        _ => level,
    };

    [GeneratedRegex(@"\{@?(?<name>[A-Za-z0-9_]+)(,-?\d+)?(:(?<format>[^}]+))?\}")]
    private static partial Regex Hole();
}
