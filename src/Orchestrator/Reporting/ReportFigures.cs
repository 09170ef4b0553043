using System.Globalization;
using ScottPlot;
using ScottPlot.TickGenerators;
using Sweep.Protocol.Training;
using Sweep.Protocol.Events;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Reporting;

/// <summary>One PNG of the report: its file name (in the report folder), title and what it shows.</summary>
public sealed record ReportFigure(string FileName, string Title, string Description);

/// <summary>
/// The study's figures as PNG files drawn with ScottPlot 5 (through SkiaSharp, headless): training
/// accuracy (Fig. 2), time per 100 iterations (Fig. 3), test accuracy by group (Figs. 4–6), peak memory
/// (Fig. 7) and test accuracy against wall-clock time. Each trial keeps one colour in every figure.
/// </summary>
public static class ReportFigures
{
    public const int Width = 800;
    public const int Height = 500;

    private static readonly Lazy<string?> FontName = new(ChooseFont);

    /// <summary>Where the figures find their font, for a note when they have none.</summary>
    public static bool HasFont => FontName.Value is not null;

    /// <summary>Draws every figure into <paramref name="directory"/> (which must exist), overwriting; returns them in report order.</summary>
    public static IReadOnlyList<ReportFigure> Write(SweepAnalysis analysis, string directory)
    {
        var figures = new List<ReportFigure>();
        var colors = TrialColors(analysis);
        var trials = analysis.Trials;

        figures.Add(Lines(directory, "fig2-train-accuracy.png", "Fig. 2: training accuracy vs iteration",
            "Mean training accuracy over each test interval, every trial.", "iteration", "training accuracy",
            trials, colors, t => t.Points.Select(p => ((double)p.Iteration, p.TrainAccuracy)), accuracy: true));

        figures.Add(Bars(directory, "fig3-seconds-per-100.png", "Fig. 3: seconds per 100 iterations",
            "Mean wall-clock seconds per 100 training iterations (tests included), per trial, coloured by batch size; a trial with no timed interval (diverged at once) has no bar.",
            "seconds per 100 iterations", trials, t => t.SecondsPerIteration * 100, v => v.ToString("0.##", CultureInfo.InvariantCulture)));

        foreach (var (fileName, title, description, members) in TestAccuracyGroups(analysis))
        {
            figures.Add(Lines(directory, fileName, title, description, "iteration", "test accuracy",
                members, colors, t => t.Points.Select(p => ((double)p.Iteration, p.TestAccuracy)), accuracy: true));
        }

        figures.Add(Bars(directory, "fig7-peak-memory.png", "Fig. 7: peak memory per trial",
            "Peak memory of each trial (CPU: peak resident memory of the process; CUDA: device memory), coloured by batch size.",
            "peak memory (MiB)", trials, t => t.Record.PeakMemoryBytes > 0 ? t.Record.PeakMemoryBytes / 1048576.0 : null,
            v => v.ToString("0", CultureInfo.InvariantCulture)));

        figures.Add(Lines(directory, "test-accuracy-vs-time.png", "Test accuracy vs wall-clock time",
            "Test accuracy against the cumulative wall-clock seconds of each trial's test intervals.", "wall-clock seconds (cumulative)", "test accuracy",
            trials, colors, t => t.Points.Select((p, i) => (t.CumulativeSeconds[i], p.TestAccuracy)), accuracy: true));
        return figures;
    }

    /// <summary>
    /// The groups of Figs. 4–6: for the paper preset exactly the paper's (batch alone, rate alone, both);
    /// otherwise one figure per base lr shared by several trials (those vary the batch) and one per batch
    /// size shared by several trials (those vary the rate), or all trials in one when no group has two.
    /// </summary>
    public static IReadOnlyList<(string FileName, string Title, string Description, IReadOnlyList<TrialAnalysis> Trials)> TestAccuracyGroups(SweepAnalysis analysis)
    {
        if (analysis.IsPaperPreset)
        {
            IReadOnlyList<TrialAnalysis> Cases(params int[] numbers) => numbers.Select(n => analysis[$"CASE{n}"]!).ToList();
            return
            [
                ("fig4-batch.png", "Fig. 4: test accuracy vs iteration, batch size alone", "CASE1, 2, 3: batch 64, 32, 128 at lr 0.01.", Cases(1, 2, 3)),
                ("fig5-lr.png", "Fig. 5: test accuracy vs iteration, learning rate alone", "CASE1, 4, 5, 7, 8: lr 0.01, 0.04, 0.001, 0.0025, 0.1 at batch 64.", Cases(1, 4, 5, 7, 8)),
                ("fig6-coupled.png", "Fig. 6: test accuracy vs iteration, batch and rate together", "CASE1, 6, 9: half the batch with twice, or half, the rate.", Cases(1, 6, 9)),
            ];
        }
        var groups = new List<(string, string, string, IReadOnlyList<TrialAnalysis>)>();
        // Rates grouped by how they read (10 significant digits), so 0.01 × 0.25 and 0.01 / 4 are one group and one file.
        foreach (var byRate in analysis.Trials.GroupBy(t => Number(t.BaseLr)).Where(g => g.Select(t => t.BatchSize).Distinct().Count() > 1).OrderBy(g => g.First().BaseLr))
        {
            string lr = byRate.Key;
            groups.Add(($"fig4-6-test-accuracy-lr{lr}.png", $"Test accuracy vs iteration at lr {lr} (batch varies)",
                $"The trials with base lr {lr}: batch {string.Join(", ", byRate.Select(t => t.BatchSize).Distinct().Order())}.", byRate.ToList()));
        }
        foreach (var byBatch in analysis.Trials.GroupBy(t => t.BatchSize).Where(g => g.Select(t => Number(t.BaseLr)).Distinct().Count() > 1).OrderBy(g => g.Key))
        {
            groups.Add(($"fig4-6-test-accuracy-b{byBatch.Key}.png", $"Test accuracy vs iteration at batch {byBatch.Key} (learning rate varies)",
                $"The trials with batch {byBatch.Key}: lr {string.Join(", ", byBatch.Select(t => t.BaseLr).Order().Select(Number).Distinct())}.", byBatch.ToList()));
        }
        if (groups.Count == 0)
            groups.Add(("fig4-6-test-accuracy-all.png", "Test accuracy vs iteration", "Every trial (no batch size or rate is shared by trials that vary the other).", analysis.Trials.ToList()));
        return groups;
    }

    /// <summary>How a trial is named in a legend: its name, batch and rate, and whether it diverged or was stopped early.</summary>
    public static string Label(TrialAnalysis trial) =>
        $"{SafeText.Line(trial.Name)} (b{trial.BatchSize}, lr {trial.BaseLr.ToString("G4", CultureInfo.InvariantCulture)})" +
        (trial.Diverged ? ", diverged" : trial.Record.State == TrialState.Stopped ? $", stopped at {trial.Record.StoppedAtIteration}" : "");

    private static ReportFigure Lines(
        string directory, string fileName, string title, string description, string xLabel, string yLabel,
        IEnumerable<TrialAnalysis> trials, IReadOnlyDictionary<string, (Color Color, LinePattern Pattern)> colors,
        Func<TrialAnalysis, IEnumerable<(double X, double Y)>> series, bool accuracy)
    {
        var plot = NewPlot(title, xLabel, yLabel);
        int drawn = 0;
        foreach (var trial in trials)
        {
            var points = series(trial).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
            if (points.Count == 0) continue;
            var (color, pattern) = colors[trial.Id];
            var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray(), color);
            line.LegendText = Label(trial);
            line.LineWidth = 2;
            line.LinePattern = pattern;
            line.MarkerSize = 6;
            // A curve that ended early (diverged, or stopped by the policy) ends with a cross where it ended.
            if (trial.Diverged || trial.Record.State == TrialState.Stopped)
            {
                var end = plot.Add.Marker(points[^1].X, points[^1].Y, MarkerShape.Cross, 14, color);
                end.MarkerLineWidth = 3;
            }
            drawn++;
        }
        if (drawn == 0) plot.Add.Annotation("no test points yet");
        else plot.ShowLegend(Edge.Right);
        if (accuracy) plot.Axes.SetLimitsY(0, 1.02);
        return Save(plot, directory, fileName, title, description);
    }

    private static ReportFigure Bars(
        string directory, string fileName, string title, string description, string yLabel,
        IReadOnlyList<TrialAnalysis> trials, Func<TrialAnalysis, double?> value, Func<double, string> format)
    {
        var plot = NewPlot(title, "trial", yLabel);
        var batches = trials.Select(t => t.BatchSize).Distinct().Order().ToList();
        var palette = new ScottPlot.Palettes.Category10();
        var batchColor = batches.Select((b, i) => (b, palette.GetColor(i))).ToDictionary(x => x.b, x => x.Item2);
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        foreach (var trial in trials)
        {
            if (value(trial) is not { } v || !double.IsFinite(v)) continue;
            bars.Add(new Bar { Position = bars.Count, Value = v, FillColor = batchColor[trial.BatchSize], Label = format(v) });
            ticks.Add(new Tick(ticks.Count, SafeText.Line(trial.Name)));
        }
        if (bars.Count == 0)
        {
            plot.Add.Annotation("no measurements yet");
        }
        else
        {
            var added = plot.Add.Bars(bars);
            added.ValueLabelStyle.FontSize = 11;
            plot.Axes.Bottom.TickGenerator = new NumericManual(ticks.ToArray());
            plot.Axes.Bottom.MajorTickStyle.Length = 0;
            if (ticks.Count > 12)
            {
                plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
                plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
                plot.Axes.Bottom.MinimumSize = 30 + 7 * ticks.Max(t => t.Label.Length);
            }
            plot.Axes.Margins(bottom: 0, top: 0.15);
            foreach (var batch in batches.Where(b => trials.Any(t => t.BatchSize == b && value(t) is { } v && double.IsFinite(v))))
                plot.Legend.ManualItems.Add(new LegendItem { LabelText = $"batch {batch}", FillColor = batchColor[batch] });
            plot.ShowLegend(Edge.Right);
        }
        return Save(plot, directory, fileName, title, description);
    }

    private static Plot NewPlot(string title, string xLabel, string yLabel)
    {
        var plot = new Plot();
        if (FontName.Value is { } font) plot.Font.Set(font);
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        return plot;
    }

    private static ReportFigure Save(Plot plot, string directory, string fileName, string title, string description)
    {
        plot.SavePng(Path.Combine(directory, fileName), Width, Height);
        return new ReportFigure(fileName, title, description);
    }

    /// <summary>One colour per trial in sweep order (ten distinct, then twenty), dashed after the twentieth.</summary>
    private static Dictionary<string, (Color, LinePattern)> TrialColors(SweepAnalysis analysis)
    {
        IPalette palette = analysis.Trials.Count <= 10 ? new ScottPlot.Palettes.Category10() : new ScottPlot.Palettes.Category20();
        return analysis.Trials
            .Select((t, i) => (t.Id, Style: (palette.GetColor(i), i < 20 ? LinePattern.Solid : LinePattern.Dashed)))
            .ToDictionary(x => x.Id, x => x.Style);
    }

    /// <summary>
    /// A sans-serif family that SkiaSharp finds on this machine (DejaVu Sans on Debian), else null and
    /// ScottPlot's own choice. The Linux build of SkiaSharp that ScottPlot brings reads /usr/share/fonts itself.
    /// </summary>
    private static string? ChooseFont()
    {
        var families = SkiaSharp.SKFontManager.Default.FontFamilies.ToList();
        foreach (var wanted in new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica" })
            if (families.Contains(wanted, StringComparer.OrdinalIgnoreCase)) return wanted;
        return families.FirstOrDefault(f => f.Contains("Sans", StringComparison.OrdinalIgnoreCase) && !f.Contains("Mono", StringComparison.OrdinalIgnoreCase))
               ?? families.FirstOrDefault();
    }

    private static string Number(double value) => double.Parse(value.ToString("G10", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture).ToString("0.##########", CultureInfo.InvariantCulture);
}
