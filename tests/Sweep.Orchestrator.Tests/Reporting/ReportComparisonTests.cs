using Sweep.Orchestrator.Reporting;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Reporting;

/// <summary>The report's comparison figures: which parameters they show, on which scale, and where each trial sits.</summary>
public sealed class ReportComparisonTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("sweep-compare-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private static TrialDefinition Trial(string name, int batch, double lr, string optimizer, double dropout) =>
        new($"id-{name}", name, new TrialSpec(batch, 2 * batch, lr, 200, 100, 1, new SolverSpec(), new DatasetSpec("unused"),
            new TrialParameters([new TrialParameter("optimizer", ParameterValue.String(optimizer)), new TrialParameter("dropout", ParameterValue.Real(dropout))])));

    private static (SweepAnalysis Analysis, ReportEvents Log) Sweep()
    {
        var log = new ReportEvents("compare",
            Trial("a", 16, 0.01, "sgd", 0.1), Trial("b", 64, 0.01, "adam", 0.1), Trial("c", 256, 0.01, "sgd", 0.1), Trial("d", 64, 0.01, "adam", 0.1));
        log.Completed("a", [0.1, 0.8, 0.9], 1.0, ReportEvents.MiB);
        log.Completed("b", [0.1, 0.85, 0.95], 1.0, ReportEvents.MiB);
        log.Start("c").Points("c", [0.1, 0.5], 1.0, ReportEvents.MiB).StopEarly("c", 100, 0.5, 0.6);
        log.Start("d").Points("d", [0.1, 0.7], 1.0, ReportEvents.MiB);
        return (SweepAnalysis.Compute(log.Fold(), log.Events), log);
    }

    [Fact]
    public void Only_the_parameters_that_vary_among_finished_trials_are_compared_with_a_log_axis_past_a_factor_of_ten()
    {
        var (a, _) = Sweep();
        var finished = a.Trials.Where(t => t.Record.IsFinished).ToList();
        var axes = ReportFigures.VaryingParameters(finished);

        // base lr and dropout are the same everywhere; batch spans 16 to 256 (a factor of 16): log; optimizer is text.
        Assert.Equal(["batch", "optimizer"], axes.Select(x => x.Name));
        Assert.True(axes[0].Log);
        Assert.Equal([Math.Log10(16), Math.Log10(64), Math.Log10(256)], finished.Select(t => axes[0].At(t)!.Value));
        Assert.Equal(["adam", "sgd"], axes[1].Categories);
        Assert.Equal([1.0, 0.0, 1.0], finished.Select(t => axes[1].At(t)!.Value));
    }

    [Fact]
    public void The_report_draws_a_figure_per_varying_parameter_and_the_parallel_coordinates()
    {
        var (a, _) = Sweep();
        var figures = ReportFigures.Write(a, folder).Where(f => f.FileName.StartsWith("compare-", StringComparison.Ordinal)).ToList();
        Assert.Equal(["compare-final-vs-batch.png", "compare-final-vs-optimizer.png", "compare-parallel-coordinates.png"], figures.Select(f => f.FileName));
        Assert.All(figures, f => Assert.True(new FileInfo(Path.Combine(folder, f.FileName)).Length > 1000, f.FileName));
    }
}
