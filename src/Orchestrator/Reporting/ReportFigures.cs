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
        figures.AddRange(Comparisons(analysis, directory));
        return figures;
    }

    /// <summary>A parameter of the sweep as the comparison figures show it: its name, each trial's value, and whether its axis is logarithmic.</summary>
    public sealed record ParameterAxis(string Name, Func<TrialAnalysis, object?> Value, bool Log, IReadOnlyList<string>? Categories)
    {
        /// <summary>Where a trial sits on this axis: log10 of the value, the value, or the category's index.</summary>
        public double? At(TrialAnalysis trial) => Value(trial) switch
        {
            null => null,
            _ when Categories is not null => Categories.ToList().IndexOf(Convert.ToString(Value(trial), CultureInfo.InvariantCulture)!),
            var v => Log ? Math.Log10(Convert.ToDouble(v, CultureInfo.InvariantCulture)) : Convert.ToDouble(v, CultureInfo.InvariantCulture),
        };
    }

    /// <summary>
    /// The parameters that vary among the trials with a final test accuracy: batch size, base lr, then
    /// the named parameters by name; numbers spanning more than a factor of 10 (all positive) on a log axis.
    /// </summary>
    public static List<ParameterAxis> VaryingParameters(IReadOnlyList<TrialAnalysis> trials)
    {
        var candidates = new List<(string Name, Func<TrialAnalysis, object?> Value)>
        {
            ("batch", t => t.BatchSize),
            ("base lr", t => t.BaseLr),
        };
        foreach (var name in trials.SelectMany(t => t.Record.Definition.Spec.Parameters?.Items ?? []).Select(p => p.Name).Distinct().Order(StringComparer.Ordinal))
        {
            candidates.Add((name, t => t.Record.Definition.Spec.Parameters?.Get(name) is { } p
                ? p.Kind switch { ParameterKind.Integer or ParameterKind.Real => p.AsReal(), _ => p.Text }
                : null));
        }
        var axes = new List<ParameterAxis>();
        foreach (var (name, value) in candidates)
        {
            var values = trials.Select(value).Where(v => v is not null).ToList();
            if (values.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)).Distinct().Count() < 2) continue;
            if (values.Any(v => v is string))
            {
                axes.Add(new ParameterAxis(name, value, false, values.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)!).Distinct().Order(StringComparer.Ordinal).ToList()));
                continue;
            }
            var numbers = values.Select(v => Convert.ToDouble(v, CultureInfo.InvariantCulture)).ToList();
            axes.Add(new ParameterAxis(name, value, numbers.All(v => v > 0) && numbers.Max() / numbers.Min() > 10, null));
        }
        return axes;
    }

    /// <summary>
    /// What users of other tools compare first: the final test accuracy against each parameter that
    /// varies (completed trials as dots, trials that ended early as crosses at their last accuracy), and
    /// the parallel coordinates of the parameters and the final accuracy (one line per trial, coloured
    /// by it). Nothing when fewer than two trials have a test accuracy.
    /// </summary>
    private static IEnumerable<ReportFigure> Comparisons(SweepAnalysis analysis, string directory)
    {
        var measured = analysis.Trials.Where(t => t.FinalTestAccuracy is { } a && double.IsFinite(a) && t.Record.IsFinished).ToList();
        if (measured.Count < 2) yield break;
        var axes = VaryingParameters(measured);
        foreach (var axis in axes)
        {
            var plot = NewPlot($"Final test accuracy vs {axis.Name}", axis.Log ? $"{axis.Name} (log scale)" : axis.Name, "final test accuracy");
            foreach (var (group, shape) in new[] { (measured.Where(t => t.CanBeBest), MarkerShape.FilledCircle), (measured.Where(t => !t.CanBeBest), MarkerShape.Cross) })
            {
                var points = group.Select(t => (X: axis.At(t), Y: t.FinalTestAccuracy!.Value)).Where(p => p.X is not null).ToList();
                if (points.Count == 0) continue;
                var scatter = plot.Add.ScatterPoints(points.Select(p => p.X!.Value).ToArray(), points.Select(p => p.Y).ToArray());
                scatter.MarkerShape = shape;
                scatter.MarkerSize = 9;
                scatter.LegendText = shape == MarkerShape.FilledCircle ? "completed" : "diverged, stopped or failed (last accuracy)";
            }
            AxisTicks(plot.Axes.Bottom, axis, measured);
            plot.ShowLegend(Edge.Bottom);
            string file = $"compare-final-vs-{FileSafe(axis.Name)}.png";
            yield return Save(plot, directory, file, $"Final test accuracy vs {axis.Name}",
                $"Each finished trial's final test accuracy against its {axis.Name}{(axis.Log ? " (log scale)" : "")}: completed trials as dots, the others as crosses at their last test accuracy.");
        }
        if (axes.Count == 0) yield break;
        var parallel = NewPlot("Parameters and final test accuracy", "", "position on each axis (low to high)");
        double lo = measured.Min(t => t.FinalTestAccuracy!.Value), hi = measured.Max(t => t.FinalTestAccuracy!.Value);
        var colormap = new ScottPlot.Colormaps.Viridis();
        var ranges = axes.Select(a => measured.Select(a.At).Where(v => v is not null).Select(v => v!.Value).ToList()).Select(v => (Min: v.Min(), Max: v.Max())).ToList();
        double Normal(double v, double min, double max) => max > min ? (v - min) / (max - min) : 0.5;
        foreach (var trial in measured.OrderBy(t => t.FinalTestAccuracy))
        {
            var ys = axes.Select((a, i) => a.At(trial) is { } v ? Normal(v, ranges[i].Min, ranges[i].Max) : double.NaN)
                .Append(Normal(trial.FinalTestAccuracy!.Value, lo, hi)).ToArray();
            var line = parallel.Add.ScatterLine(Enumerable.Range(0, ys.Length).Select(i => (double)i).ToArray(), ys, colormap.GetColor(Normal(trial.FinalTestAccuracy!.Value, lo, hi)));
            line.LineWidth = 1.5f;
            line.LinePattern = trial.CanBeBest ? LinePattern.Solid : LinePattern.Dotted;
        }
        var labels = axes.Select((a, i) => $"{a.Name}\n{Tick(a, ranges[i].Min)} to {Tick(a, ranges[i].Max)}")
            .Append($"final test acc\n{lo.ToString("0.####", CultureInfo.InvariantCulture)} to {hi.ToString("0.####", CultureInfo.InvariantCulture)}").ToArray();
        parallel.Axes.Bottom.TickGenerator = new NumericManual(labels.Select((l, i) => new Tick(i, l)).ToArray());
        parallel.Axes.Bottom.MinimumSize = 50;
        parallel.Axes.SetLimitsY(-0.05, 1.05);
        parallel.Axes.SetLimitsX(-0.2, axes.Count + 0.2);
        yield return Save(parallel, directory, "compare-parallel-coordinates.png", "Parameters and final test accuracy (parallel coordinates)",
            "One line per finished trial across the parameters that vary and its final test accuracy, each axis from its lowest to its highest value (log axes for batch size and rates spanning a factor of 10), coloured by the final accuracy (yellow best); dotted: a trial that did not complete.");
    }

    private static void AxisTicks(IAxis axis, ParameterAxis parameter, IReadOnlyList<TrialAnalysis> trials)
    {
        if (parameter.Categories is { } categories)
        {
            axis.TickGenerator = new NumericManual(categories.Select((c, i) => new Tick(i, SafeText.Line(c))).ToArray());
            return;
        }
        if (!parameter.Log) return;
        var values = trials.Select(parameter.Value).Where(v => v is not null).Select(v => Convert.ToDouble(v, CultureInfo.InvariantCulture)).Distinct().Order().ToList();
        var shown = values.Count <= 8 ? values : Enumerable.Range(0, 8).Select(i => values[i * (values.Count - 1) / 7]).Distinct().ToList();
        axis.TickGenerator = new NumericManual(shown.Select(v => new Tick(Math.Log10(v), v.ToString("G4", CultureInfo.InvariantCulture))).ToArray());
    }

    private static string Tick(ParameterAxis axis, double at) =>
        axis.Categories is { } c ? SafeText.Line(c[(int)at]) : (axis.Log ? Math.Pow(10, at) : at).ToString("G4", CultureInfo.InvariantCulture);

    private static string FileSafe(string name) => new([.. name.Select(c => char.IsLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-')]);

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
