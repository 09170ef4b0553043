using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Running;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

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
}
