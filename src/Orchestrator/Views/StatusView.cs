using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sweep.Orchestrator.Coordination;

using Sweep.Protocol.Events;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Views;

/// <summary>A sweep's state as people and programs read it: the `sweep status` table and JSON, and the summary at the end of a run.</summary>
public static class StatusView
{
    private static readonly JsonSerializerOptions Json = new()
    {
        // Read by people and programs, never embedded in HTML: names keep their apostrophes and angle brackets.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>One trial as `sweep status --json` shows it (and trials.csv, and the dashboard).</summary>
    /// <param name="Iteration">The iteration the trial reached (<see cref="IterationReached"/>).</param>
    /// <param name="Parameters">The trial's named parameters by name, each a JSON number, string or boolean as its type (absent when it has none).</param>
    public sealed record TrialStatus(
        string Id,
        string Name,
        int BatchSize,
        int TestBatchSize,
        double BaseLr,
        int MaxIter,
        TrialState State,
        int Attempts,
        int Iteration,
        double? FinalTestAccuracy,
        double? BestTestAccuracy,
        double? SecondsPer100Iterations,
        long PeakMemoryBytes,
        int? DivergedAtIteration,
        string? DivergenceReason,
        string? Error,
        DateTimeOffset? FinishedAt,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        IReadOnlyDictionary<string, object>? Parameters = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        int? StoppedAtIteration = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        string? StopReason = null);

    /// <summary>A worker slot the sweep has heard of: whether it takes trials, and its self-test's one-line verdict.</summary>
    public sealed record SlotStatus(string WorkerId, string Node, string Device, int Threads, bool Healthy, string SelfTest, DateTimeOffset CheckedAt);

    /// <param name="InterruptReason">Why the sweep was halted (no healthy slot), while it stays interrupted.</param>
    /// <param name="OwnerGone">The journal says running, but no process owns the sweep any more (killed): it is interrupted in fact.</param>
    /// <param name="Owner">Who runs it, or since when nobody does (<see cref="Journal.SweepLiveness"/>), for a sweep the journal shows as running.</param>
    public sealed record SweepStatus(
        string SweepId,
        string Name,
        SweepPhase State,
        string Source,
        DateTimeOffset StartedAt,
        DateTimeOffset? FinishedAt,
        IReadOnlyList<TrialStatus> Trials,
        IReadOnlyList<SlotStatus> Slots,
        string? InterruptReason,
        bool OwnerGone = false,
        string? Owner = null);

    /// <summary>
    /// The iteration a trial reached: where its last attempt stands, and for a diverged trial at least the
    /// iteration it diverged at (a state folded before divergences set the iteration, such as an older
    /// snapshot, would otherwise show 0 or its last test point).
    /// </summary>
    public static int IterationReached(TrialRecord trial) =>
        trial.State == TrialState.Diverged && trial.DivergedAtIteration is { } diverged ? Math.Max(trial.Iteration, diverged) : trial.Iteration;

    /// <summary>A sweep's state in the shape of `sweep status --json`.</summary>
    public static SweepStatus Status(SweepState state, Journal.SweepLiveness? owner = null) => new(
        state.SweepId,
        state.Definition.Name,
        state.Phase,
        state.Definition.Source,
        state.StartedAt,
        state.FinishedAt,
        state.Trials.Select(t => new TrialStatus(
            t.Definition.Id,
            t.Definition.Name,
            t.Definition.Spec.BatchSize,
            t.Definition.Spec.TestBatchSize,
            t.Definition.Spec.BaseLr,
            t.Definition.Spec.MaxIter,
            t.State,
            t.Attempts,
            IterationReached(t),
            t.IsFinished ? t.FinalTestAccuracy : null,
            t.BestTestAccuracy,
            t.SecondsPer100Iterations,
            t.PeakMemoryBytes,
            t.DivergedAtIteration,
            t.DivergenceReason,
            t.Error,
            t.FinishedAt,
            t.Definition.Spec.Parameters?.Items.ToDictionary(p => p.Name, p => Typed(p.Value), StringComparer.Ordinal),
            t.StoppedAtIteration,
            t.StopReason)).ToList(),
        state.Slots.Values
            .OrderBy(s => s.Slot.WorkerId, StringComparer.Ordinal)
            .Select(s => new SlotStatus(s.Slot.WorkerId, s.Slot.Node, s.Slot.Device, s.Slot.Threads, s.Health.Healthy, s.Health.Summary, s.CheckedAt))
            .ToList(),
        state.InterruptReason,
        owner?.OwnerGone ?? false,
        owner?.Summary);

    /// <summary>A parameter's value as the JSON value of its type.</summary>
    private static object Typed(ParameterValue value) => value.Kind switch
    {
        ParameterKind.Integer => value.AsInteger(),
        ParameterKind.Real => value.AsReal(),
        ParameterKind.Boolean => value.AsBoolean(),
        _ => value.Text,
    };

    /// <summary>The names of the sweep's named parameters (every trial has the same), sorted; empty when it has none.</summary>
    public static IReadOnlyList<string> ParameterNames(SweepState state) =>
        [.. state.Trials.SelectMany(t => t.Definition.Spec.Parameters?.Items ?? []).Select(p => p.Name).Distinct().Order(StringComparer.Ordinal)];

    /// <summary>`sweep status --json`: names and reasons exactly as they are (JSON escapes what it must); <paramref name="owner"/> adds ownerGone and owner for a running sweep.</summary>
    public static string ToJson(SweepState state, Journal.SweepLiveness? owner = null) => JsonSerializer.Serialize(Status(state, owner), Json);

    /// <summary>
    /// One line per trial, aligned, with a line per slot and the counts per state underneath. Names,
    /// reasons, errors and verdicts go through <see cref="SafeText.Line"/>: a line break, tab or escape
    /// sequence in a name shows as an escape and never breaks a row.
    /// </summary>
    /// <param name="owner">The sweep's liveness (<see cref="Journal.SweepLiveness"/>): when its process is gone, running trials show as stopped and the last line says the sweep is interrupted.</param>
    public static string Table(SweepState state, Journal.SweepLiveness? owner = null)
    {
        bool orphaned = owner is { OwnerGone: true };
        string StateOf(TrialRecord t) => orphaned && t.State == TrialState.Running ? "Stopped" : t.State.ToString();
        // A sweep's named parameters get a column each, after the base lr.
        var parameters = ParameterNames(state);
        var rows = new List<string[]> { (string[])["trial", "batch", "base lr", .. parameters, "state", "attempts", "iter", "test acc", "best", "s/100 it", "peak MiB", "note"] };
        foreach (var t in state.Trials)
        {
            rows.Add(
            [
                SafeText.Line(t.Definition.Name),
                t.Definition.Spec.BatchSize.ToString(CultureInfo.InvariantCulture),
                t.Definition.Spec.BaseLr.ToString("G6", CultureInfo.InvariantCulture),
                .. parameters.Select(name => SafeText.Line(t.Definition.Spec.Parameters?.Get(name)?.Text ?? "-")),
                StateOf(t),
                t.Attempts.ToString(CultureInfo.InvariantCulture),
                $"{IterationReached(t)}/{t.Definition.Spec.MaxIter}",
                Format(t.FinalTestAccuracy, "F4"),
                Format(t.BestTestAccuracy, "F4"),
                Format(t.SecondsPer100Iterations, "F2"),
                t.PeakMemoryBytes > 0 ? (t.PeakMemoryBytes / 1048576.0).ToString("F0", CultureInfo.InvariantCulture) : "-",
                SafeText.Line(t.State switch
                {
                    TrialState.Diverged => $"diverged at {t.DivergedAtIteration}: {t.DivergenceReason}",
                    TrialState.Failed => t.Error ?? "",
                    TrialState.Stopped => $"stopped early at {t.StoppedAtIteration}: {t.StopReason}",
                    TrialState.Running when orphaned => "its process is gone: resume continues it from its last checkpoint",
                    _ when t.Error is not null => $"last error: {t.Error}",
                    _ => "",
                }),
            ]);
        }
        var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var text = new StringBuilder();
        foreach (var row in rows)
            text.AppendLine(string.Join("  ", row.Select((cell, c) => c == row.Length - 1 ? cell : cell.PadRight(widths[c]))).TrimEnd());
        foreach (var slot in state.Slots.Values.OrderBy(s => s.Slot.WorkerId, StringComparer.Ordinal))
            text.AppendLine(CultureInfo.InvariantCulture, $"slot {SafeText.Line(slot.Slot.WorkerId)}: {(slot.Health.Healthy ? "healthy" : "UNHEALTHY, takes no trials")}: {SafeText.Line(slot.Health.Summary)}");
        var counts = state.Trials.GroupBy(t => t.State).OrderBy(g => g.Key).Select(g => $"{g.Count()} {StateOf(g.First()).ToLowerInvariant()}");
        var phase = orphaned ? "interrupted (its process is gone)" : state.Phase.ToString().ToLowerInvariant();
        text.Append(CultureInfo.InvariantCulture, $"sweep {SafeText.Line(state.SweepId)} ({SafeText.Line(state.Definition.Name)}): {phase}; {string.Join(", ", counts)}");
        if (state.Phase == SweepPhase.Interrupted && state.InterruptReason is { } reason) text.Append(CultureInfo.InvariantCulture, $"; halted: {SafeText.Line(reason)}");
        return text.ToString();
    }

    private static string Format(double? value, string format) => value?.ToString(format, CultureInfo.InvariantCulture) ?? "-";
}
