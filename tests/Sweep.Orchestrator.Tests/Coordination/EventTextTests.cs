using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>The one line per event: a command trial's test point says only what its program measured.</summary>
public sealed class EventTextTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.UtcNow;

    private static SweepState OneTrial(ModelKind model) => SweepState.Start(new SweepStarted("s", new SweepDefinition(
        "view", "test", model,
        [new TrialDefinition("a", "alpha", new TrialSpec(32, 64, 0.01, 1000, 100, 1, new SolverSpec(), new DatasetSpec("x")))],
        new DivergencePolicy(), new RetryPolicy(), OutOfMemoryPolicy.Fail, -1, new SyntheticSpec(),
        model == ModelKind.Command ? new CommandSpec(["sh"], "/") : null), At));

    private static string Line(ModelKind model, double trainLoss, double testAccuracy)
    {
        var e = new TrialProgress("a", 1, new TrialMetrics(100, trainLoss, double.NaN, double.NaN, testAccuracy, double.NaN, 1.5, 0), At);
        var state = OneTrial(model);
        var line = EventText.Of(state, e)!;
        // Every hole has its value, in order: the JSON log keeps each as a property of that name.
        Assert.Equal(System.Text.RegularExpressions.Regex.Matches(line.Template, "{[A-Za-z]+").Count, line.Values.Length);
        return line.Render(text => text);
    }

    [Theory]
    [InlineData(0.25, 0.5, "alpha: iter 100/1000  train loss 0.2500  test acc 0.5000  1.50 s")]
    [InlineData(double.NaN, 0.5, "alpha: iter 100/1000  test acc 0.5000  1.50 s")]
    [InlineData(0.25, double.NaN, "alpha: iter 100/1000  train loss 0.2500  1.50 s")]
    [InlineData(double.NaN, double.NaN, "alpha: iter 100/1000  1.50 s")]
    public void A_command_trials_figure_it_did_not_report_is_left_out(double trainLoss, double testAccuracy, string expected)
    {
        Assert.Equal(expected, Line(ModelKind.Command, trainLoss, testAccuracy));
    }

    [Fact]
    public void A_trained_models_NaN_is_shown_as_it_is()
    {
        Assert.Equal("alpha: iter 100/1000  train loss NaN  test acc 0.5000  1.50 s", Line(ModelKind.Synthetic, double.NaN, 0.5));
    }
}
