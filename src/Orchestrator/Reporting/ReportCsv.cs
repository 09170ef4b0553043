using System.Globalization;
using System.Text;

namespace Sweep.Orchestrator.Reporting;

/// <summary>
/// The report's tables as CSV (RFC 4180: comma-separated, CRLF line ends, a header row, fields with a
/// comma, quote or line break in double quotes with quotes doubled), numbers in the invariant culture
/// with round-trip precision, missing values empty.
/// </summary>
public static class ReportCsv
{
    public static readonly IReadOnlyList<string> TrialColumns =
    [
        "id", "name", "batchSize", "testBatchSize", "baseLr", "maxIter", "state", "attempts", "iteration", "finalTestAccuracy",
        "bestTestAccuracy", "secondsPer100Iterations", "peakMemoryBytes", "divergedAtIteration", "divergenceReason", "error", "finishedAt",
    ];

    public static readonly IReadOnlyList<string> MetricColumns =
        ["trial", "iteration", "trainLoss", "trainAccuracy", "testLoss", "testAccuracy", "learningRate", "seconds", "peakMemoryBytes"];

    /// <summary>One row per trial: the fields of `sweep status --json`.</summary>
    public static string Trials(SweepAnalysis analysis)
    {
        var csv = new StringBuilder();
        Row(csv, TrialColumns);
        foreach (var trial in analysis.Trials)
        {
            var s = trial.Status;
            Row(csv,
            [
                s.Id, s.Name, Number(s.BatchSize), Number(s.TestBatchSize), Number(s.BaseLr), Number(s.MaxIter), s.State.ToString(),
                Number(s.Attempts), Number(s.Iteration), Number(s.FinalTestAccuracy), Number(s.BestTestAccuracy),
                Number(s.SecondsPer100Iterations), Number(s.PeakMemoryBytes), Number(s.DivergedAtIteration), s.DivergenceReason ?? "",
                s.Error ?? "", s.FinishedAt?.ToString("O", CultureInfo.InvariantCulture) ?? "",
            ]);
        }
        return csv.ToString();
    }

    /// <summary>One row per trial and test point, in trial order then iteration order.</summary>
    public static string Metrics(SweepAnalysis analysis)
    {
        var csv = new StringBuilder();
        Row(csv, MetricColumns);
        foreach (var trial in analysis.Trials)
        {
            foreach (var p in trial.Points)
            {
                Row(csv,
                [
                    trial.Name, Number(p.Iteration), Number(p.TrainLoss), Number(p.TrainAccuracy), Number(p.TestLoss), Number(p.TestAccuracy),
                    Number(p.LearningRate), Number(p.Seconds), Number(p.PeakMemoryBytes),
                ]);
            }
        }
        return csv.ToString();
    }

    /// <summary>A field as RFC 4180 wants it: quoted when it holds a comma, a quote or a line break.</summary>
    public static string Field(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;

    private static void Row(StringBuilder csv, IEnumerable<string> fields) => csv.Append(string.Join(',', fields.Select(Field))).Append("\r\n");

    private static string Number(double? value) => value is { } v ? v.ToString("R", CultureInfo.InvariantCulture) : "";

    private static string Number(long? value) => value is { } v ? v.ToString(CultureInfo.InvariantCulture) : "";
}
