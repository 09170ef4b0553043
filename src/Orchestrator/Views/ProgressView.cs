using System.Globalization;
using System.Text;
using Sweep.Orchestrator.Coordination;

using Sweep.Protocol.Events;

namespace Sweep.Orchestrator.Views;

/// <summary>
/// Shows a sweep's progress as its events arrive, for `sweep run` and `sweep watch` alike. On a
/// terminal: a line per finished or failed trial, under a live block with a row per running trial
/// (iteration of max-iter, last test accuracy, seconds per 100 iterations, ETA) and the overall
/// count, redrawn in place. Elsewhere (CI, files, pipes): a plain line per event. Names, reasons and
/// errors are shown through <see cref="SafeText.Line"/>, so every line and row stays one line.
/// </summary>
/// <remarks>
/// The block is redrawn by moving the cursor up over its own rows, so nothing else may write to the
/// terminal between two redraws without the view knowing. Lines from elsewhere (Serilog's warnings
/// on stderr) go through <see cref="Interleave"/>: the block is erased, the line written, the block
/// drawn again under it. A live view on the console does this for <see cref="Console.Error"/> by
/// itself until <see cref="Finish"/> or <see cref="Dispose"/>. Rows are cut to the terminal's width,
/// so that none wraps into a second screen line the redraw would not count.
/// </remarks>
public sealed class ProgressView : IDisposable
{
    private static readonly TimeSpan RedrawEvery = TimeSpan.FromMilliseconds(250);
    private readonly TextWriter output;
    private readonly int? width;
    private readonly object gate = new();
    private bool live;
    private SweepState state;
    private int blockLines;
    private DateTime lastDraw = DateTime.MinValue;
    private TextWriter? sharedError;

    /// <param name="state">The sweep's state so far; events are applied to it.</param>
    /// <param name="output">Where progress goes.</param>
    /// <param name="live">A live block redrawn in place (a terminal), or a plain line per event.</param>
    /// <param name="width">
    /// The terminal's width in columns: block rows are cut to one less. Null: the console's width when
    /// <paramref name="output"/> is the console, else no limit.
    /// </param>
    public ProgressView(SweepState state, TextWriter output, bool live, int? width = null)
    {
        this.state = state;
        this.output = output;
        this.live = live;
        this.width = width ?? (live && ReferenceEquals(output, Console.Out) ? ConsoleWidth() : null);
        if (live && ReferenceEquals(output, Console.Out) && !Console.IsErrorRedirected)
        {
            // Serilog's console sink picks Console.Error for every event: its warnings now come through the view.
            sharedError = Console.Error;
            Console.SetError(TextWriter.Synchronized(new InterleavingWriter(this, sharedError)));
        }
    }

    /// <summary>Live redrawing only when writing to the console of a terminal.</summary>
    public static bool IsTerminal(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb");

    /// <summary>The sweep's state with every event applied so far.</summary>
    public SweepState State => state;

    /// <summary>Starts over from a fresh state (the coordinator moved and answered with its snapshot).</summary>
    public void Reset(SweepState fresh)
    {
        lock (gate) state = fresh;
    }

    /// <summary>Applies events persisted before the view started following (a catch-up read) without showing them one by one.</summary>
    public void CatchUp(IEnumerable<ISweepEvent> events)
    {
        lock (gate)
        {
            foreach (var e in events) state.Apply(e);
        }
    }

    /// <summary>Applies one event to the state and shows it: a line, a redraw of the block, or both.</summary>
    public void Apply(ISweepEvent e)
    {
        lock (gate)
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
    }

    /// <summary>A line of our own (the coordinator moved, …), above the block.</summary>
    public void Note(string text)
    {
        lock (gate)
        {
            Erase();
            Write($"{DateTime.Now:HH:mm:ss} {SafeText.Line(text)}");
            if (live) Draw();
        }
    }

    /// <summary>
    /// A writer for lines from elsewhere that share the terminal with the live block (warnings on
    /// stderr): each complete line is written with the block erased first and drawn again under it.
    /// Off a terminal, <paramref name="target"/> itself.
    /// </summary>
    public TextWriter Interleave(TextWriter target) => live ? new InterleavingWriter(this, target) : target;

    /// <summary>
    /// Removes the live block for good (before the final table is printed, or before the caller writes
    /// lines of its own): later events are shown as plain lines, and stderr is given back.
    /// </summary>
    public void Finish()
    {
        lock (gate)
        {
            Erase();
            live = false;
        }
        Dispose();
    }

    /// <summary>Gives <see cref="Console.Error"/> back if the view took it over; the screen is left as it is.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (sharedError is null) return;
            Console.SetError(sharedError);
            sharedError = null;
        }
    }

    /// <summary>The event's line (<see cref="EventText"/>, the log's words), timed, or null for one the console does not show.</summary>
    private string? Describe(ISweepEvent e) =>
        EventText.Of(state, e) is { OnConsole: true } line ? $"{DateTime.Now:HH:mm:ss} {line.Render(SafeText.Line)}" : null;

    private void Draw()
    {
        var block = new StringBuilder();
        int lines = 0;
        foreach (var t in state.Running)
        {
            var perHundred = t.SecondsPer100Iterations;
            var eta = perHundred is { } s ? TimeSpan.FromSeconds(s * Math.Max(0, t.Definition.Spec.MaxIter - t.Iteration) / 100) : (TimeSpan?)null;
            block.AppendLine(Fit(string.Create(CultureInfo.InvariantCulture,
                $"  {SafeText.Line(t.Definition.Name),-24} {t.Iteration,6}/{t.Definition.Spec.MaxIter,-6}  test acc {(t.FinalTestAccuracy is { } a ? a.ToString("F4", CultureInfo.InvariantCulture) : "-"),-6}  {(perHundred is { } p ? p.ToString("F2", CultureInfo.InvariantCulture) : "-"),6} s/100 it  ETA {(eta is { } e ? e.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "-")}")));
            lines++;
        }
        block.AppendLine(Fit($"  {state.FinishedCount}/{state.Trials.Count} trials finished, {state.Running.Count()} running"));
        lines++;
        output.Write(block.ToString());
        output.Flush();
        blockLines = lines;
        lastDraw = DateTime.UtcNow;
    }

    /// <summary>A block row cut to the terminal's width less one column, so it never wraps onto a screen line the redraw would not count.</summary>
    private string Fit(string row)
    {
        if (width is not { } columns || row.Length < columns) return row;
        int keep = Math.Max(1, columns - 2);
        if (char.IsHighSurrogate(row[keep - 1])) keep--;
        return row[..keep] + "…";
    }

    private void Erase()
    {
        if (!live || blockLines == 0) return;
        output.Write($"\u001b[{blockLines}A\u001b[J");
        output.Flush();
        blockLines = 0;
    }

    private void Write(string line)
    {
        output.WriteLine(line);
        output.Flush();
    }

    /// <summary>The console's width, or null when it cannot be read.</summary>
    private static int? ConsoleWidth()
    {
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (PlatformNotSupportedException)
        {
            return null;
        }
    }

    /// <summary>Gathers what is written into lines; each complete line goes out between an erase and a redraw of the block.</summary>
    private sealed class InterleavingWriter(ProgressView view, TextWriter target) : TextWriter
    {
        private readonly StringBuilder pending = new();

        public override Encoding Encoding => target.Encoding;

        public override void Write(char value)
        {
            lock (pending)
            {
                pending.Append(value);
                if (value == '\n') Emit();
            }
        }

        public override void Write(string? value)
        {
            if (string.IsNullOrEmpty(value)) return;
            lock (pending)
            {
                pending.Append(value);
                if (value.Contains('\n')) Emit();
            }
        }

        public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

        public override void Flush()
        {
            // A partial line waits for its end: written now, the next redraw would move the cursor over it.
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                lock (pending)
                {
                    if (pending.Length > 0) pending.Append(NewLine);
                    Emit();
                }
            }
            base.Dispose(disposing);
        }

        /// <summary>Writes the complete lines gathered so far; what follows the last line break waits.</summary>
        private void Emit()
        {
            var text = pending.ToString();
            int end = text.LastIndexOf('\n') + 1;
            if (end == 0) return;
            pending.Remove(0, end);
            lock (view.gate)
            {
                bool shown = view.blockLines > 0;
                view.Erase();
                target.Write(text[..end]);
                target.Flush();
                if (shown) view.Draw();
            }
        }
    }
}
