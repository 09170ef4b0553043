using System.Text;
using System.Text.RegularExpressions;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Running;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests;

/// <summary>The progress display of `sweep run` and `sweep watch`: plain lines off a terminal, a live block on one.</summary>
public sealed class ProgressViewTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.UtcNow;

    private static SweepState TwoTrials() => SweepState.Start(new SweepStarted("s", new SweepDefinition(
        "view", "test", ModelKind.Synthetic,
        [
            new TrialDefinition("a", "alpha", new TrialSpec(32, 64, 0.01, 1000, 100, 1, new SolverSpec(), new DatasetSpec("x"))),
            new TrialDefinition("b", "beta", new TrialSpec(64, 128, 0.01, 1000, 100, 1, new SolverSpec(), new DatasetSpec("x"))),
        ],
        new DivergencePolicy(), new RetryPolicy(), OutOfMemoryPolicy.Fail, -1, new SyntheticSpec()), At));

    private static SweepState Named(params string[] names) => SweepState.Start(new SweepStarted("s", new SweepDefinition(
        "view", "test", ModelKind.Synthetic,
        names.Select((name, i) => new TrialDefinition(((char)('a' + i)).ToString(), name, new TrialSpec(32, 64, 0.01, 1000, 100, 1, new SolverSpec(), new DatasetSpec("x")))).ToArray(),
        new DivergencePolicy(), new RetryPolicy(), OutOfMemoryPolicy.Fail, -1, new SyntheticSpec()), At));

    private static TrialProgress Progress(string trial, int iteration, double accuracy, double seconds) =>
        new(trial, 1, new TrialMetrics(iteration, 0.5, 0.9, 0.4, accuracy, 0.01, seconds, 1000), At);

    [Fact]
    public void Off_a_terminal_every_event_is_one_plain_line()
    {
        var output = new StringWriter();
        var view = new ProgressView(TwoTrials(), output, live: false);

        view.Apply(new TrialStarted("a", 1, "w1", "node", 0, At));
        view.Apply(Progress("a", 100, 0.91, 2.0));
        view.Apply(new TrialDiverged("a", 1, 150, "loss is NaN", At));

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.EndsWith("alpha: started attempt 1 on w1", lines[0]);
        Assert.Contains("alpha: iter 100/1000  train loss 0.5000  test acc 0.9100", lines[1]);
        Assert.EndsWith("alpha: DIVERGED at iteration 150: loss is NaN", lines[2]);
        Assert.DoesNotContain("\u001b[", output.ToString());
    }

    [Fact]
    public void On_a_terminal_running_trials_are_a_block_redrawn_in_place_with_eta()
    {
        var output = new StringWriter();
        var view = new ProgressView(TwoTrials(), output, live: true);

        view.Apply(new TrialStarted("a", 1, "w1", "node", 0, At));
        view.Apply(new TrialStarted("b", 1, "w2", "node", 0, At));
        Thread.Sleep(300); // the block is redrawn at most four times a second
        view.Apply(Progress("a", 100, 0.91, 2.0));
        view.Apply(new TrialCompleted("b", 1, At));

        var text = output.ToString();
        // alpha: 2 s per 100 iterations, 900 to go: 18 s left.
        Assert.Contains("alpha", text);
        Assert.Contains("100/1000", text);
        Assert.Contains("0.9100", text);
        Assert.Contains("2.00 s/100 it  ETA 00:00:18", text);
        Assert.Contains("\u001b[", text); // erased and redrawn, not appended
        Assert.Contains("beta: completed", text);
        Assert.Contains("1/2 trials finished, 1 running", text);
    }

    [Fact]
    public void Off_a_terminal_hostile_names_and_reasons_stay_one_line_per_event()
    {
        var output = new StringWriter();
        var view = new ProgressView(Named("new\nline", "<b>\u001b[2J</b>"), output, live: false);
        view.Apply(new TrialStarted("a", 1, "w\n1", "node", 0, At));
        view.Apply(new TrialFailed("b", 1, "boom\nat line 2", false, false, At));
        view.Apply(new TrialDiverged("a", 1, 150, "loss is NaN\tagain", At));

        var lines = output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries).Select(l => l[9..]).ToList();
        Assert.Equal(
        [
            "new\\nline: started attempt 1 on w\\n1",
            "<b>\\u001B[2J</b>: attempt 1 failed: boom\\nat line 2",
            "new\\nline: DIVERGED at iteration 150: loss is NaN\\tagain",
        ], lines);
        Assert.DoesNotContain('\u001b', output.ToString());
    }

    [Fact]
    public void A_warning_line_between_redraws_goes_above_the_block_and_leaves_no_stale_row()
    {
        var terminal = new StringWriter();
        var view = new ProgressView(TwoTrials(), terminal, live: true, width: 120);
        var stderr = view.Interleave(terminal);

        view.Apply(new TrialStarted("a", 1, "w1", "node", 0, At));
        view.Apply(new TrialStarted("b", 1, "w2", "node", 0, At));
        Thread.Sleep(300);
        view.Apply(Progress("a", 100, 0.91, 2.0)); // the block: alpha, beta, the count
        // Serilog writes a warning in pieces, as its console sink does: the line goes out when it ends.
        stderr.Write("[WRN] Trial beta attempt 1 failed");
        stderr.Write(": boom");
        stderr.WriteLine();
        Thread.Sleep(300);
        view.Apply(Progress("b", 100, 0.92, 4.0));
        view.Apply(new TrialCompleted("a", 1, At));

        Assert.Equal(
        [
            "[WRN] Trial beta attempt 1 failed: boom",
            "alpha: completed, test accuracy 0.9100",
            "  beta                        100/1000    test acc 0.9200    4.00 s/100 it  ETA 00:00:36",
            "  1/2 trials finished, 1 running",
        ], Screen(terminal.ToString()));
    }

    [Fact]
    public void The_same_warning_written_past_the_view_leaves_a_stale_row_which_the_screen_model_sees()
    {
        // The fault the view's writer exists for, shown on the same screen model: a line the view does not know of
        // shifts the block down by one, so the next redraw moves up one row short and the block's first row stays behind.
        var terminal = new StringWriter();
        var view = new ProgressView(TwoTrials(), terminal, live: true, width: 120);
        view.Apply(new TrialStarted("a", 1, "w1", "node", 0, At));
        Thread.Sleep(300);
        view.Apply(Progress("a", 100, 0.91, 2.0));
        terminal.WriteLine("[WRN] written straight to the terminal");
        view.Apply(new TrialCompleted("a", 1, At));

        var screen = Screen(terminal.ToString());
        Assert.Equal("  alpha                       100/1000    test acc 0.9100    2.00 s/100 it  ETA 00:00:18", screen[0]);
        Assert.Equal(["alpha: completed, test accuracy 0.9100", "  1/2 trials finished, 0 running"], screen[^2..]);
        Assert.DoesNotContain("[WRN] written straight to the terminal", screen);
    }

    [Fact]
    public void Block_rows_are_cut_to_the_terminal_width_so_a_long_name_never_wraps_into_a_stale_row()
    {
        var terminal = new StringWriter();
        var longName = new string('x', 80) + "\n" + new string('y', 20);
        var view = new ProgressView(Named(longName, "short"), terminal, live: true, width: 40);
        view.Apply(new TrialStarted("a", 1, "w1", "node", 0, At));
        view.Apply(new TrialStarted("b", 1, "w2", "node", 0, At));
        Thread.Sleep(300);
        view.Apply(Progress("a", 100, 0.91, 2.0));
        Thread.Sleep(300);
        view.Apply(Progress("b", 100, 0.92, 4.0));
        view.Apply(new TrialCompleted("b", 1, At));

        var screen = Screen(terminal.ToString(), width: 40);
        Assert.Equal(
        [
            // A plain line wraps like any terminal line (the block's rows are the ones cut).
            "short: completed, test accuracy",
            " 0.9200",
            "  " + new string('x', 36) + "…",
            "  1/2 trials finished, 1 running",
        ], screen);
    }

    [Fact]
    public void After_finish_events_are_plain_lines_and_the_writer_passes_lines_through()
    {
        var terminal = new StringWriter();
        var view = new ProgressView(TwoTrials(), terminal, live: true, width: 120);
        var stderr = view.Interleave(terminal);
        view.Apply(new TrialStarted("a", 1, "w1", "node", 0, At));
        view.Finish();
        int end = terminal.ToString().Length;
        terminal.WriteLine("interrupted: stopping running trials with a checkpoint…"); // the caller's own line, under the erased block
        view.Apply(new TrialRequeued("a", "sweep interrupted at iteration 40", null, false, At, At));
        stderr.WriteLine("[WRN] late warning");

        Assert.DoesNotContain('\u001b', terminal.ToString()[end..]);
        Assert.Equal(
        [
            "interrupted: stopping running trials with a checkpoint…",
            "alpha: re-queued: sweep interrupted at iteration 40",
            "[WRN] late warning",
        ], Screen(terminal.ToString()));
    }

    /// <summary>
    /// What a terminal shows for <paramref name="text"/>: printable characters at the cursor (wrapping at
    /// <paramref name="width"/>), line feeds, cursor-up (ESC [ n A) and erase-below (ESC [ J). Times at the
    /// start of a line ("HH:mm:ss ") are dropped; trailing empty rows too.
    /// </summary>
    private static List<string> Screen(string text, int width = 1000)
    {
        var rows = new List<StringBuilder> { new() };
        int row = 0, column = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\u001b')
            {
                var m = Regex.Match(text[i..], @"^\u001b\[(\d*)([AJ])");
                Assert.True(m.Success, $"unknown escape sequence at {i}");
                if (m.Groups[2].Value == "A") row = Math.Max(0, row - int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
                else
                {
                    rows[row].Length = Math.Min(rows[row].Length, column);
                    rows.RemoveRange(row + 1, rows.Count - row - 1);
                }
                column = Math.Min(column, rows[row].Length);
                i += m.Length - 1;
                continue;
            }
            if (c == '\r') { column = 0; continue; }
            if (c == '\n' || column == width)
            {
                row++;
                column = 0;
                if (row == rows.Count) rows.Add(new StringBuilder());
                if (c == '\n') continue;
            }
            var line = rows[row];
            if (column < line.Length) line[column] = c;
            else line.Append(c);
            column++;
        }
        var screen = rows.Select(r => Regex.Replace(r.ToString(), @"^\d\d:\d\d:\d\d ", "")).ToList();
        while (screen.Count > 0 && screen[^1].Length == 0) screen.RemoveAt(screen.Count - 1);
        return screen;
    }
}
