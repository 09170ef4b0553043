using System.Globalization;
using System.Text;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Reporting;
using Sweep.Protocol.Events;

namespace Sweep.Orchestrator.Running;

/// <summary>
/// Shows a sweep's progress as its events arrive, for `sweep run` and `sweep watch` alike. On a
/// terminal: a line per finished or failed trial, under a live block with a row per running trial
/// (iteration of max-iter, last test accuracy, seconds per 100 iterations, ETA) and the overall
/// count, redrawn in place. Elsewhere (CI, files, pipes): a plain line per event. Names, reasons and
/// errors are shown through <see cref="SafeText.Line"/>, so every line and row stays one line.
/// </summary>
public sealed class ProgressView
{
    private static readonly TimeSpan RedrawEvery = TimeSpan.FromMilliseconds(250);
    private readonly TextWriter output;
    private readonly bool live;
    private SweepState state;
    private int blockLines;
    private DateTime lastDraw = DateTime.MinValue;

    public ProgressView(SweepState state, TextWriter output, bool live)
    {
        this.state = state;
        this.output = output;
        this.live = live;
    }

    /// <summary>Live redrawing only when writing to the console of a terminal.</summary>
    public static bool IsTerminal(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb");

    public SweepState State => state;

    /// <summary>Starts over from a fresh state (the coordinator moved and answered with its snapshot).</summary>
    public void Reset(SweepState fresh) => state = fresh;

    public void Apply(ISweepEvent e)
    {
        state.Apply(e);
        var line = Describe(e);
        if (!live)
        {
            if (line is not null) Write(line);
            return;
        }
        // On a terminal, progress lives in the block; only lasting news scrolls above it.
        bool lasting = e is not (TrialProgress or TrialStarted or TrialCheckpointed);
        if (lasting && line is not null)
        {
            Erase();
            Write(line);
            Draw();
        }
        else if (DateTime.UtcNow - lastDraw >= RedrawEvery)
        {
            Erase();
            Draw();
        }
    }

    public void Note(string text)
    {
        Erase();
        Write($"{DateTime.Now:HH:mm:ss} {SafeText.Line(text)}");
        if (live) Draw();
    }

    /// <summary>Removes the live block before the final table is printed.</summary>
    public void Finish() => Erase();

    private string? Describe(ISweepEvent e)
    {
        string Name(string trialId) => SafeText.Line(state.Contains(trialId) ? state[trialId].Definition.Name : trialId);
        string? text = e switch
        {
            TrialStarted s => $"{Name(s.TrialId)}: started attempt {s.Attempt} on {SafeText.Line(s.WorkerId)}" + (s.FromIteration > 0 ? $", from the checkpoint at iteration {s.FromIteration}" : ""),
            TrialProgress p => string.Create(CultureInfo.InvariantCulture,
                $"{Name(p.TrialId)}: iter {p.Metrics.Iteration}/{state[p.TrialId].Definition.Spec.MaxIter}  train loss {p.Metrics.TrainLoss:F4}  test acc {p.Metrics.TestAccuracy:F4}  {p.Metrics.Seconds:F2} s"),
            TrialRestartedFromScratch r => $"{Name(r.TrialId)}: its checkpoint is not on this worker's node: starting from scratch",
            TrialCompleted c => $"{Name(c.TrialId)}: completed",
            TrialDiverged d => $"{Name(d.TrialId)}: DIVERGED at iteration {d.Iteration}: {SafeText.Line(d.Reason)}",
            TrialFailed f => $"{Name(f.TrialId)}: " + (f.Final ? "FAILED: " : $"attempt {f.Attempt} failed: ") + SafeText.Line(f.Error),
            TrialRequeued r => $"{Name(r.TrialId)}: re-queued: {SafeText.Line(r.Reason)}",
            SlotChecked { Health.Healthy: false } c => $"slot {SafeText.Line(c.Slot.WorkerId)} takes no trials: {SafeText.Line(c.Health.Summary)}",
            SlotChecked c => $"slot {SafeText.Line(c.Slot.WorkerId)} ready: {SafeText.Line(c.Health.Summary)}",
            SweepInterrupted { Reason: { } reason } => $"sweep {SafeText.Line(state.SweepId)} halted: {SafeText.Line(reason)}",
            SweepInterrupted => $"sweep {SafeText.Line(state.SweepId)} interrupted",
            SweepCompleted => $"sweep {SafeText.Line(state.SweepId)} completed",
            _ => null,
        };
        return text is null ? null : $"{DateTime.Now:HH:mm:ss} {text}";
    }

    private void Draw()
    {
        var block = new StringBuilder();
        int lines = 0;
        foreach (var t in state.Running)
        {
            var perHundred = t.SecondsPer100Iterations;
            var eta = perHundred is { } s ? TimeSpan.FromSeconds(s * Math.Max(0, t.Definition.Spec.MaxIter - t.Iteration) / 100) : (TimeSpan?)null;
            block.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"  {SafeText.Line(t.Definition.Name),-24} {t.Iteration,6}/{t.Definition.Spec.MaxIter,-6}  test acc {(t.FinalTestAccuracy is { } a ? a.ToString("F4", CultureInfo.InvariantCulture) : "-"),-6}  {(perHundred is { } p ? p.ToString("F2", CultureInfo.InvariantCulture) : "-"),6} s/100 it  ETA {(eta is { } e ? e.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "-")}"));
            lines++;
        }
        block.AppendLine($"  {state.FinishedCount}/{state.Trials.Count} trials finished, {state.Running.Count()} running");
        lines++;
        output.Write(block.ToString());
        output.Flush();
        blockLines = lines;
        lastDraw = DateTime.UtcNow;
    }

    private void Erase()
    {
        if (!live || blockLines == 0) return;
        output.Write($"\u001b[{blockLines}A\u001b[J");
        blockLines = 0;
    }

    private void Write(string line)
    {
        output.WriteLine(line);
        output.Flush();
    }
}
