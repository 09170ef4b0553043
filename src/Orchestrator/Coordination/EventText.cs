using System.Globalization;
using System.Text.RegularExpressions;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Coordination;

/// <summary>How much an event's line matters: its level in the log.</summary>
public enum EventLevel
{
    /// <summary>Every test point and checkpoint: in the log at debug level only.</summary>
    Debug,
    Information,
    Warning,
}

/// <summary>
/// One event as one line: a message template with named holes (Serilog's syntax: <c>{Name}</c> or
/// <c>{Name:F4}</c>) and their values in order. The coordinator logs it as it is, so the JSON log
/// keeps each value as a property; the progress view renders it (<see cref="Render"/>), so the
/// console shows the log's words.
/// </summary>
/// <param name="OnConsole">Whether the progress view prints it (checkpoints are for the log only).</param>
public sealed partial record EventLine(EventLevel Level, string Template, object?[] Values, bool OnConsole = true)
{
    /// <summary>
    /// The template with its holes filled in order: numbers in the invariant culture with the hole's
    /// format, anything else through <paramref name="text"/> (the caller's escaping, e.g. <c>SafeText.Line</c>).
    /// </summary>
    public string Render(Func<string, string> text)
    {
        int next = 0;
        return Hole().Replace(Template, match =>
        {
            var value = next < Values.Length ? Values[next++] : null;
            var format = match.Groups[2].Success ? match.Groups[2].Value : null;
            return value switch
            {
                null => "",
                IFormattable number and not Enum => number.ToString(format, CultureInfo.InvariantCulture),
                _ => text(value.ToString() ?? ""),
            };
        });
    }

    [GeneratedRegex(@"\{(\w+)(?::([^}]+))?\}")]
    private static partial Regex Hole();
}

/// <summary>
/// The one way an event becomes text, for the coordinator's log and for the progress view alike:
/// what the line says about the event, once <paramref name="state"/> has applied it.
/// </summary>
public static class EventText
{
    /// <summary>The line for <paramref name="e"/> as applied to <paramref name="state"/>, or null for an event that has none (SweepStarted).</summary>
    public static EventLine? Of(SweepState state, ISweepEvent e)
    {
        string Name(string trialId) => state.Contains(trialId) ? state[trialId].Definition.Name : trialId;
        return e switch
        {
            TrialStarted { FromIteration: > 0 } s => new(EventLevel.Information, "{TrialName}: started attempt {Attempt} on {Worker}, from the checkpoint at iteration {FromIteration}", [Name(s.TrialId), s.Attempt, s.WorkerId, s.FromIteration]),
            TrialStarted s => new(EventLevel.Information, "{TrialName}: started attempt {Attempt} on {Worker}", [Name(s.TrialId), s.Attempt, s.WorkerId]),
            // A command trial's program may leave a figure out (NaN: not measured): its line leaves it out too.
            TrialProgress p when state.Definition.Model == ModelKind.Command && (double.IsNaN(p.Metrics.TrainLoss) || double.IsNaN(p.Metrics.TestAccuracy)) => new(EventLevel.Debug,
                "{TrialName}: iter {Iteration}/{MaxIter}" + (double.IsNaN(p.Metrics.TrainLoss) ? "" : "  train loss {TrainLoss:F4}") + (double.IsNaN(p.Metrics.TestAccuracy) ? "" : "  test acc {TestAccuracy:F4}") + "  {Seconds:F2} s",
                [Name(p.TrialId), p.Metrics.Iteration, state[p.TrialId].Definition.Spec.MaxIter, .. double.IsNaN(p.Metrics.TrainLoss) ? Array.Empty<object>() : [p.Metrics.TrainLoss],
                    .. double.IsNaN(p.Metrics.TestAccuracy) ? Array.Empty<object>() : [p.Metrics.TestAccuracy], p.Metrics.Seconds]),
            TrialProgress p => new(EventLevel.Debug, "{TrialName}: iter {Iteration}/{MaxIter}  train loss {TrainLoss:F4}  test acc {TestAccuracy:F4}  {Seconds:F2} s",
                [Name(p.TrialId), p.Metrics.Iteration, state[p.TrialId].Definition.Spec.MaxIter, p.Metrics.TrainLoss, p.Metrics.TestAccuracy, p.Metrics.Seconds]),
            TrialCheckpointed c => new(EventLevel.Debug, "{TrialName}: checkpoint at iteration {Iteration}", [Name(c.TrialId), c.Iteration], OnConsole: false),
            TrialRestartedFromScratch { Reason: { } reason } r => new(EventLevel.Warning, "{TrialName}: its checkpoint cannot be used ({Reason}): starting from scratch", [Name(r.TrialId), reason]),
            TrialRestartedFromScratch r => new(EventLevel.Warning, "{TrialName}: its checkpoint is not on this worker's node: starting from scratch", [Name(r.TrialId)]),
            TrialCompleted c => new(EventLevel.Information, "{TrialName}: completed, test accuracy {TestAccuracy:F4}", [Name(c.TrialId), state[c.TrialId].FinalTestAccuracy ?? double.NaN]),
            // A divergence is an outcome the sweep exists to find (CASE8), not a problem: information, not a warning.
            TrialDiverged d => new(EventLevel.Information, "{TrialName}: DIVERGED at iteration {Iteration}: {Reason}", [Name(d.TrialId), d.Iteration, d.Reason]),
            TrialStoppedEarly s => new(EventLevel.Information, "{TrialName}: stopped early at {Iteration}: {Reason}", [Name(s.TrialId), s.Iteration, s.Reason]),
            TrialFailed { Final: true } f => new(EventLevel.Warning, "{TrialName}: FAILED: {Error}", [Name(f.TrialId), f.Error]),
            TrialFailed f => new(EventLevel.Warning, "{TrialName}: attempt {Attempt} failed: {Error}", [Name(f.TrialId), f.Attempt, f.Error]),
            TrialRequeued r => new(EventLevel.Information, "{TrialName}: re-queued: {Reason}", [Name(r.TrialId), r.Reason]),
            TrialHandedBack h => new(EventLevel.Information, "{TrialName}: handed back by {Worker} before it started ({Reason}): re-queued, attempt {Attempt} does not count", [Name(h.TrialId), h.WorkerId, h.Reason, h.Attempt]),
            // A slot's verdict is logged when it registers (TrialWorker, the coordinator): here at debug level, on the console for all.
            SlotChecked { Health.Healthy: false } c => new(EventLevel.Debug, "slot {Worker} takes no trials: {Health}", [c.Slot.WorkerId, c.Health.Summary]),
            SlotChecked c => new(EventLevel.Debug, "slot {Worker} ready: {Health}", [c.Slot.WorkerId, c.Health.Summary]),
            SweepInterrupted { Reason: { } reason } => new(EventLevel.Warning, "sweep {SweepId} halted: {Reason}", [state.SweepId, reason]),
            SweepInterrupted => new(EventLevel.Information, "sweep {SweepId} interrupted", [state.SweepId]),
            SweepCompleted => new(EventLevel.Information, "sweep {SweepId} completed", [state.SweepId]),
            _ => null,
        };
    }
}
