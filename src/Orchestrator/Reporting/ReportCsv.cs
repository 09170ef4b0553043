using System.Globalization;
using System.Text;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Reporting;

/// <summary>
/// The report's tables as CSV (RFC 4180: comma-separated, CRLF line ends, a header row), numbers in the
/// invariant culture with round-trip precision, missing values empty, and every text field (ids, names,
/// states, reasons, errors, times) through <see cref="SafeText.CsvText"/>: in double quotes, and with a
/// single quote in front when a spreadsheet would take it for a formula.
/// </summary>
public static class ReportCsv
{
    /// <summary>The columns of trials.csv: the fields of `sweep status --json`.</summary>
    public static readonly IReadOnlyList<string> TrialColumns =
    [
        "id", "name", "batchSize", "testBatchSize", "baseLr", "maxIter", "state", "attempts", "iteration", "finalTestAccuracy",
        "bestTestAccuracy", "secondsPer100Iterations", "peakMemoryBytes", "divergedAtIteration", "divergenceReason", "error", "finishedAt",
    ];

    /// <summary>The columns of metrics.csv: the trial, then the fields of a test point.</summary>
    public static readonly IReadOnlyList<string> MetricColumns =
        ["trial", "iteration", "trainLoss", "trainAccuracy", "testLoss", "testAccuracy", "learningRate", "seconds", "peakMemoryBytes"];

    /// <summary>
    /// One row per trial: the fields of `sweep status --json`, with a column per named parameter
    /// (its name, after maxIter) when the sweep has any.
    /// </summary>
    public static string Trials(SweepAnalysis analysis)
    {
        var csv = new StringBuilder();
        var parameters = analysis.Trials.SelectMany(t => t.Status.Parameters?.Keys ?? []).Distinct().Order(StringComparer.Ordinal).ToList();
        Row(csv, [.. TrialColumns.Take(6), .. parameters, .. TrialColumns.Skip(6)]);
        foreach (var trial in analysis.Trials)
        {
            var s = trial.Status;
            Row(csv,
            [
                Text(s.Id), Text(s.Name), Number(s.BatchSize), Number(s.TestBatchSize), Number(s.BaseLr), Number(s.MaxIter),
                .. parameters.Select(name => s.Parameters?.GetValueOrDefault(name) switch
                {
                    null => "",
                    string text => Text(text),
                    bool flag => flag ? "true" : "false",
                    long whole => Number(whole),
                    var real => Number((double)real),
                }),
                Text(s.State.ToString()),
                Number(s.Attempts), Number(s.Iteration), Number(s.FinalTestAccuracy), Number(s.BestTestAccuracy),
                Number(s.SecondsPer100Iterations), Number(s.PeakMemoryBytes), Number(s.DivergedAtIteration), Text(s.DivergenceReason),
                Text(s.Error), s.FinishedAt is { } at ? Text(at.ToString("O", CultureInfo.InvariantCulture)) : "",
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
                    Text(trial.Name), Number(p.Iteration), Number(p.TrainLoss), Number(p.TrainAccuracy), Number(p.TestLoss), Number(p.TestAccuracy),
                    Number(p.LearningRate), Number(p.Seconds), Number(p.PeakMemoryBytes),
                ]);
            }
        }
        return csv.ToString();
    }

    /// <summary>A row of fields already encoded (<see cref="Text"/>, <see cref="Number(double?)"/>, or the fixed column names).</summary>
    private static void Row(StringBuilder csv, IEnumerable<string> fields) => csv.Append(string.Join(',', fields)).Append("\r\n");

    /// <summary>A text field; a missing one (null) is empty, like a missing number.</summary>
    private static string Text(string? value) => value is null ? "" : SafeText.CsvText(value);

    private static string Number(double? value) => value is { } v ? v.ToString("R", CultureInfo.InvariantCulture) : "";

    private static string Number(long? value) => value is { } v ? v.ToString(CultureInfo.InvariantCulture) : "";
}
