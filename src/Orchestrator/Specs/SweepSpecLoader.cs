using Sweep.GpuWorker.Data;
using Sweep.Protocol;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Specs;

/// <summary>
/// Reads a HOCON sweep spec (a root object <c>sweep</c>, see <c>hocon/sweeps/</c>) with its
/// <c>--set</c> overrides into a validated, expanded <see cref="SweepDefinition"/>. Every problem is an
/// <see cref="InvalidInputException"/> whose one-line message names the file (or flag), the key and what is wrong.
/// </summary>
public static class SweepSpecLoader
{
    public const int DefaultMaxTrials = 10_000;

    /// <summary>The keys each object of a spec may hold; anything else is refused, so a typo never silently falls back to a default.</summary>
    private static class Keys
    {
        public static readonly string[] Root = ["sweep"];
        public static readonly string[] Sweep =
        [
            "name", "model", "dataset", "seed", "max-iter", "test-interval", "test-batch-size", "solver", "cases", "grid",
            "scaling", "divergence", "retry", "on-out-of-memory", "synthetic", "command", "plugin", "parameters", "max-trials", "early-stopping", "random",
        ];
        public static readonly string[] Dataset = ["path", "train-count", "test-count"];
        public static readonly string[] Solver = ["momentum", "weight-decay", "lr-policy", "gamma", "power", "step-size"];
        public static readonly string[] Case = ["name", "batch-size", "test-batch-size", "base-lr", "max-iter", "seed"];
        public static readonly string[] Grid = ["batch-size", "base-lr", "lr-scaling", "seed", "max-iter"];
        public static readonly string[] Scaling = ["reference-batch-size", "reference-lr", "exponent"];
        public static readonly string[] Divergence = ["chance-after", "chance-accuracy", "loss-factor"];
        public static readonly string[] Retry = ["max-attempts", "backoff"];
        public static readonly string[] Synthetic = ["iteration-ms", "divergent-lr", "faults"];
        public static readonly string[] Fault = ["trial", "at-iteration", "kind", "attempts"];
        public static readonly string[] Command = ["arguments", "grace-period", "out-of-memory-pattern"];
        public static readonly string[] Random = ["samples", "seed", "batch-size", "base-lr", "lr-scaling"];
        public static readonly string[] Distribution = ["choice", "uniform", "log-uniform", "int-uniform", "int-log-uniform"];
        public static readonly string[] EarlyStopping = ["policy", "metric", "resource", "grace-period", "reduction-factor", "min-trials", "patience", "min-delta"];
        public static readonly string[] Plugin = ["assembly", "type"];

        /// <summary>The objects a --set key can reach (list elements cannot be addressed by a key path).</summary>
        public static readonly Dictionary<string, string[]> ByObject = new()
        {
            [""] = Root,
            ["sweep"] = Sweep,
            ["sweep.dataset"] = Dataset,
            ["sweep.solver"] = Solver,
            ["sweep.grid"] = Grid,
            ["sweep.scaling"] = Scaling,
            ["sweep.divergence"] = Divergence,
            ["sweep.retry"] = Retry,
            ["sweep.synthetic"] = Synthetic,
            ["sweep.command"] = Command,
            ["sweep.plugin"] = Plugin,
            ["sweep.parameters"] = [],
            ["sweep.early-stopping"] = EarlyStopping,
            ["sweep.random"] = Random,
        };

        /// <summary>The objects whose other keys are named parameters (for the models that take them): any key not a near miss of a known one.</summary>
        public static readonly HashSet<string> Open = ["sweep.grid", "sweep.parameters", "sweep.random"];

        public static bool IsKnown(string keyPath) => UnknownKey(keyPath) is null;

        /// <summary>
        /// What is wrong with a --set key path the spec does not have, with the closest key path that
        /// it has (the same suggestion as for unknown keys in a spec file); null when it has it.
        /// </summary>
        public static string? UnknownKey(string keyPath)
        {
            var segments = keyPath.Split('.');
            string parent = "";
            foreach (var segment in segments)
            {
                if (!ByObject.TryGetValue(parent, out var keys))
                    return $"unknown key ({parent} holds a value, not keys: set it whole, --set {parent}=VALUE)";
                if (!keys.Contains(segment))
                {
                    bool isParameter = Open.Contains(parent) && segment == segments[^1] && KeySuggestion.NearMiss(keys, segment) is null;
                    return isParameter ? null : "unknown key" + (Closest(segments) is { } closest ? $" (did you mean {closest}?)" : "");
                }
                parent = parent.Length == 0 ? segment : $"{parent}.{segment}";
            }
            return null;
        }

        /// <summary>
        /// The known key path closest to <paramref name="segments"/>: each unknown segment replaced by
        /// the closest key of its object, as far as that leads (sweep.solvr.gama: sweep.solver.gamma).
        /// </summary>
        private static string? Closest(string[] segments)
        {
            string parent = "";
            for (int i = 0; i < segments.Length; i++)
            {
                if (!ByObject.TryGetValue(parent, out var keys)) return null;
                if (!keys.Contains(segments[i]))
                {
                    if (KeySuggestion.Closest(keys, segments[i]) is not { } key) return null;
                    string[] corrected = [.. segments[..i], key, .. segments[(i + 1)..]];
                    return IsKnown(string.Join('.', corrected)) ? string.Join('.', corrected) : Closest(corrected) ?? string.Join('.', corrected[..(i + 1)]);
                }
                parent = parent.Length == 0 ? segments[i] : $"{parent}.{segments[i]}";
            }
            return null;
        }
    }

    private static readonly Dictionary<string, ModelKind> Models = new() { ["lenet"] = ModelKind.Lenet, ["synthetic"] = ModelKind.Synthetic, ["command"] = ModelKind.Command, ["plugin"] = ModelKind.Plugin };

    private static readonly Dictionary<string, LearningRatePolicy> Policies = new()
    {
        ["inv"] = LearningRatePolicy.Inv, ["fixed"] = LearningRatePolicy.Fixed, ["step"] = LearningRatePolicy.Step,
    };

    private static readonly Dictionary<string, OutOfMemoryPolicy> OutOfMemoryPolicies = new()
    {
        ["fail"] = OutOfMemoryPolicy.Fail, ["halve-batch"] = OutOfMemoryPolicy.HalveBatch,
    };

    private static readonly Dictionary<string, EarlyStoppingPolicy> StoppingPolicies = new()
    {
        ["asha"] = EarlyStoppingPolicy.Asha, ["median"] = EarlyStoppingPolicy.Median, ["plateau"] = EarlyStoppingPolicy.Plateau,
    };

    private static readonly Dictionary<string, StoppingMetric> StoppingMetrics = new()
    {
        ["test-accuracy"] = StoppingMetric.TestAccuracy, ["test-loss"] = StoppingMetric.TestLoss,
    };

    private static readonly Dictionary<string, StoppingResource> StoppingResources = new()
    {
        ["iterations"] = StoppingResource.Iterations, ["images"] = StoppingResource.Images,
    };

    private static readonly Dictionary<string, FaultKind> FaultKinds = new()
    {
        ["exception"] = FaultKind.Exception, ["nan"] = FaultKind.Nan, ["crash"] = FaultKind.Crash, ["out-of-memory"] = FaultKind.OutOfMemory,
    };

    /// <summary>
    /// Reads the spec file at <paramref name="path"/>; <paramref name="overrides"/> are the raw KEY=VALUE texts of repeated --set flags.
    /// Warnings (named cases merged into one trial) go to <paramref name="warnings"/>, standard error by default, one line each.
    /// </summary>
    public static SweepDefinition Load(string path, IReadOnlyList<string> overrides, TextWriter? warnings = null)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: spec file not found");
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException(SpecSource.OneLine($"{path}: cannot read the spec file: {e.Message}"));
        }
        return Parse(text, path, Path.GetDirectoryName(Path.GetFullPath(path))!, overrides, warnings);
    }

    /// <summary>
    /// Reads spec text as if from <paramref name="sourceName"/>; relative dataset paths and includes in the text are
    /// resolved against <paramref name="baseDirectory"/> (dataset paths given by a --set flag against the current directory).
    /// Warnings go to <paramref name="warnings"/>, standard error by default.
    /// </summary>
    public static SweepDefinition Parse(string hoconText, string sourceName, string baseDirectory, IReadOnlyList<string> overrides, TextWriter? warnings = null)
    {
        var flags = overrides.Select(raw => SpecOverride.Parse(raw, Keys.UnknownKey)).ToList();
        var source = new SpecSource(sourceName, flags);
        // The file alone first, so that its syntax errors point into the file; then with the flags
        // appended, since later lines win in HOCON: the file, then each flag in order.
        if (HoconText.Normalise(hoconText, out var fileText) is { } problem) throw source.FileError(problem);
        string merged = string.Join('\n', flags.Select(f => f.AsHoconLine).Prepend(fileText)) + '\n';
        string specPath = Path.GetFullPath(sourceName, baseDirectory);
        var includes = new IncludeSite(baseDirectory, File.Exists(specPath) ? [specPath] : []);
        var root = new SpecObject("", HoconDocument.ParseText(merged, source.FileError, includes), source);

        root.RejectUnknownKeys(Keys.Root, " (a spec holds one root object, sweep)");
        var sweep = root.Required("sweep", "a spec is one root object named sweep { ... }").Object();
        string record = string.Concat(overrides.Select(o => $" --set {o}").Prepend(sourceName));
        return ReadSweep(sweep, source, baseDirectory, record, warnings ?? Console.Error);
    }

    /// <summary>The id every trial with this spec gets: the same cell always gets the same id, whatever the sweep.</summary>
    public static string TrialId(TrialSpec spec) => GridExpander.TrialId(spec);

    private static SweepDefinition ReadSweep(SpecObject sweep, SpecSource source, string baseDirectory, string record, TextWriter warnings)
    {
        // Other tools' spelling of random search (W&B's method = random, Katib's algorithm, NNI's tuner): say where it goes here.
        foreach (var key in new[] { "search", "samples", "method" })
        {
            if (!Keys.Sweep.Contains(key) && sweep.Get(key) is { } other)
                throw other.Error("unknown key (random search is a block of its own: random { samples = N, batch-size { log-uniform = [a, b] }, ... }, beside cases and grid)");
        }
        sweep.RejectUnknownKeys(Keys.Sweep);
        string name = sweep.RequiredName("name");
        var model = sweep.Choice("model", ModelKind.Lenet, Models);
        var defaults = new TrialDefaults(
            sweep.OptionalInt(TrialFields.TestBatchSize),
            sweep.Int(TrialFields.TestInterval, 100),
            ReadSolver(sweep.Object("solver")),
            ReadDataset(sweep, source, model, baseDirectory));
        int seed = sweep.Int(TrialFields.Seed, 1);
        int maxIter = sweep.Int(TrialFields.MaxIter, 1000);
        var scaling = ReadScaling(sweep.Object("scaling"));
        var divergence = ReadDivergence(sweep.Object("divergence"));
        var retry = ReadRetry(sweep.Object("retry"));
        var onOutOfMemory = sweep.Choice("on-out-of-memory", OutOfMemoryPolicy.Fail, OutOfMemoryPolicies);
        int maxTrials = sweep.Int("max-trials", DefaultMaxTrials, Rule.Positive);

        bool takesParameters = ParameterSchema.Accepts(model);
        var parameterDefaults = ReadParameterDefaults(sweep.Object("parameters"), takesParameters);
        var caseEntries = ReadCases(sweep.Get("cases"), defaults, seed, maxIter, takesParameters);
        var grid = ReadGrid(sweep.Object("grid"), scaling, seed, maxIter, takesParameters);
        var random = ReadRandom(sweep.Object("random"), scaling, seed, takesParameters);
        var schema = ParameterSchema.Build(
            caseEntries.SelectMany(c => c.Given).Concat(grid?.Axes.SelectMany(a => a.Values) ?? []).Concat(random?.GivenKinds ?? []), parameterDefaults);
        if (grid is not null && schema.WithoutDefault.FirstOrDefault(name => grid.Axes.All(a => a.Name != name)) is { } lacking)
            throw source.Error(grid.Path, $"has no {lacking} (another part of the spec gives it: give it as an axis too, or a default in sweep.parameters)");
        if (random is not null && schema.WithoutDefault.FirstOrDefault(name => random.Parameters.All(p => p.Name != name)) is { } undrawn)
            throw source.Error(random.Path, $"has no {undrawn} (another part of the spec gives it: give it a distribution too, or a default in sweep.parameters)");
        var cases = caseEntries.Select(c => c.Candidate(schema, source)).ToList();
        Int128 count = cases.Count + (grid?.Count ?? 0) + (random?.Samples ?? 0);
        if (count == 0) throw sweep.Error("no trials: give cases = [ ... ], a grid { ... }, random { ... }, or several of them");
        // Counted from the list lengths before a single cell exists, so that a runaway grid is refused at once.
        if (count > maxTrials)
            throw sweep.Error($"expands to {count} trials, more than max-trials = {maxTrials} (raise sweep.max-trials to allow it)");

        IEnumerable<TrialCandidate> cells = grid is null ? [] : GridExpander.Cells(grid, defaults, schema);
        IEnumerable<TrialCandidate> draws = random is null ? [] : random.Draws(defaults, schema, seed, maxIter);
        var merged = GridExpander.Merge(cases.Concat(cells).Concat(draws).Select(candidate => Validated(candidate, source)));
        foreach (var (kept, same) in merged.MergedCases)
        {
            warnings.WriteLine(SpecSource.OneLine(
                $"sweep: warning: {source.Label(same.Path)}: {same.Path}: case \"{same.Name}\" has the same settings as case \"{kept.Name}\" ({kept.Path}): " +
                $"they are one trial, run once as \"{kept.Name}\" (faults aimed at \"{same.Name}\" apply to it)"));
        }
        warnings.Flush();
        var synthetic = ReadSynthetic(sweep.Object("synthetic"), merged);
        var command = ReadCommand(sweep, model, source, baseDirectory, schema.Names);
        var plugin = ReadPlugin(sweep, model, source, baseDirectory);
        var earlyStopping = ReadEarlyStopping(sweep.Object("early-stopping"), defaults.TestInterval, merged.Trials.Min(t => t.Spec.BatchSize));
        return new SweepDefinition(name, record, model, merged.Trials, divergence, retry, onOutOfMemory, scaling.Exponent, synthetic, command, plugin, earlyStopping);
    }

    /// <summary>The spec's own checks (positive sizes and rates) also catch what the key-level checks cannot, such as a coupled rate that overflows.</summary>
    private static TrialCandidate Validated(TrialCandidate candidate, SpecSource source)
    {
        var problems = candidate.Spec.Problems();
        return problems.Count == 0 ? candidate : throw source.Error(candidate.Path, $"trial {candidate.Name}: {problems[0]}");
    }

    private static SolverSpec ReadSolver(SpecObject? solver)
    {
        var defaults = new SolverSpec();
        if (solver is null) return defaults;
        solver.RejectUnknownKeys(Keys.Solver);
        return new SolverSpec(
            solver.Number(TrialFields.Momentum, defaults.Momentum),
            solver.Number(TrialFields.WeightDecay, defaults.WeightDecay),
            solver.Choice("lr-policy", defaults.Policy, Policies),
            solver.Number(TrialFields.Gamma, defaults.Gamma),
            solver.Number(TrialFields.Power, defaults.Power),
            solver.Int(TrialFields.StepSize, defaults.StepSize));
    }

    private static DatasetSpec ReadDataset(SpecObject sweep, SpecSource source, ModelKind model, string baseDirectory)
    {
        var dataset = sweep.Object("dataset");
        dataset?.RejectUnknownKeys(Keys.Dataset);
        var given = dataset?.Get("path");
        string path = given is null ? MnistData.EmbeddedPath : ResolveDataset(given, baseDirectory);
        // LeNet and plug-ins read the data (a command's program is given its own paths); the synthetic model never touches it.
        if (model.TrainsWithTorch() && !Directory.Exists(path))
            throw given?.Error($"folder not found: {path}") ?? source.Error("sweep.dataset.path", $"folder not found: {path} (the embedded data)");
        return new DatasetSpec(path, dataset?.OptionalInt(TrialFields.TrainCount), dataset?.OptionalInt(TrialFields.TestCount));
    }

    private static string ResolveDataset(SpecValue given, string baseDirectory)
    {
        string text = given.Text();
        if (text.Length == 0) throw given.Error("must not be empty");
        // A path in the file is relative to the file; one typed in a --set flag is relative to where it was typed.
        string relativeTo = given.Source.OverrideOf(given.Path) is null ? baseDirectory : Directory.GetCurrentDirectory();
        return Path.GetFullPath(text, Path.GetFullPath(relativeTo));
    }

    private static Scaling ReadScaling(SpecObject? scaling)
    {
        if (scaling is null) return new Scaling(null, null, null, -1);
        scaling.RejectUnknownKeys(Keys.Scaling);
        return new Scaling(
            scaling,
            scaling.OptionalInt("reference-batch-size", Rule.Positive),
            scaling.OptionalNumber("reference-lr", Rule.Positive),
            scaling.Number("exponent", -1, Rule.Finite));
    }

    private static DivergencePolicy ReadDivergence(SpecObject? divergence)
    {
        var defaults = new DivergencePolicy();
        if (divergence is null) return defaults;
        divergence.RejectUnknownKeys(Keys.Divergence);
        return new DivergencePolicy(
            divergence.OptionalInt("chance-after", Rule.NonNegative),
            divergence.Number("chance-accuracy", defaults.ChanceAccuracy, Rule.OpenFraction),
            divergence.OptionalNumber("loss-factor", Rule.AboveOne));
    }

    private static RetryPolicy ReadRetry(SpecObject? retry)
    {
        var defaults = new RetryPolicy();
        if (retry is null) return defaults;
        retry.RejectUnknownKeys(Keys.Retry);
        return new RetryPolicy(
            retry.Int("max-attempts", defaults.MaxAttempts, Rule.AtLeastOne),
            retry.Get("backoff")?.Seconds(Rule.NonNegative) ?? defaults.BackoffSeconds);
    }

    /// <summary>What models without named parameters say about a key they do not know.</summary>
    private const string NoParametersHint = " (this model's trials take no other parameters: named parameters are for model = command and model = plugin)";

    /// <summary>A case as read, before the sweep's parameter types are known: its fields and the named parameters it gives.</summary>
    private sealed record CaseEntry(string Name, string Path, Func<TrialParameters?, TrialSpec> Spec, IReadOnlyList<GivenParameter> Given)
    {
        public TrialCandidate Candidate(ParameterSchema schema, SpecSource source)
        {
            var given = Given.ToDictionary(g => g.Name, g => g.Value, StringComparer.Ordinal);
            var parameters = schema.Complete(given, name => source.Error(Path, $"case {Name} has no {name} (give it, or a default in sweep.parameters)"));
            return new TrialCandidate(Name, Spec(parameters), Path, Named: true);
        }
    }

    /// <summary>The keys of <paramref name="entry"/> that are named parameters, unread (see <see cref="NamedParameters"/>).</summary>
    private static IReadOnlyList<string> NamedParameterKeys(SpecObject entry, IReadOnlyCollection<string> known, bool takesParameters)
    {
        if (!takesParameters)
        {
            entry.RejectUnknownKeys(known, NoParametersHint);
            return [];
        }
        entry.RejectNearMisses(known);
        return entry.Keys.Where(key => !known.Contains(key)).ToList();
    }

    /// <summary>The keys of <paramref name="entry"/> that are named parameters (with <paramref name="takesParameters"/>: every key not in <paramref name="known"/> and not a near miss of one); refuses the others.</summary>
    private static IReadOnlyList<GivenParameter> NamedParameters(SpecObject entry, IReadOnlyCollection<string> known, bool takesParameters) =>
        NamedParameterKeys(entry, known, takesParameters).Select(key => ParameterSchema.Read(key, entry.Get(key) ?? throw entry.Missing(key, "a value"))).ToList();

    /// <summary>sweep.parameters: the named parameters' values for the trials that do not give them.</summary>
    private static IReadOnlyList<GivenParameter> ReadParameterDefaults(SpecObject? parameters, bool takesParameters)
    {
        if (parameters is null) return [];
        if (!takesParameters) throw parameters.Error("is for model = command or model = plugin only");
        return parameters.Keys.Select(key => ParameterSchema.Read(key, parameters.Get(key) ?? throw parameters.Missing(key, "a value"))).ToList();
    }

    private static List<CaseEntry> ReadCases(SpecValue? list, TrialDefaults defaults, int seed, int maxIter, bool takesParameters)
    {
        var cases = new List<CaseEntry>();
        if (list is null) return cases;
        var firstByName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in list.List(allowSingle: false))
        {
            var entry = item.Object();
            var given = NamedParameters(entry, Keys.Case, takesParameters);
            string name = entry.RequiredName("name");
            if (!firstByName.TryAdd(name, entry.Path))
                throw entry.Required("name").Error($"duplicate case name \"{name}\" (first used by {firstByName[name]})");
            int batchSize = entry.Required(TrialFields.BatchSize.Key).Int(TrialFields.BatchSize.Rule);
            int? testBatchSize = entry.OptionalInt(TrialFields.TestBatchSize);
            double baseLr = entry.Required(TrialFields.BaseLr.Key).Number(TrialFields.BaseLr.Rule);
            int caseMaxIter = entry.Int(TrialFields.MaxIter, maxIter);
            int caseSeed = entry.Int(TrialFields.Seed, seed);
            cases.Add(new CaseEntry(name, entry.Path, parameters => defaults.Spec(batchSize, testBatchSize, baseLr, caseMaxIter, caseSeed, parameters), given));
        }
        return cases;
    }

    private static GridSpec? ReadGrid(SpecObject? grid, Scaling scaling, int seed, int maxIter, bool takesParameters)
    {
        // An empty grid { } adds nothing, like an empty cases list.
        if (grid is null || grid.IsEmpty) return null;
        var axes = ReadAxes(grid, takesParameters);
        var batchSizes = Ints(grid.Required(TrialFields.BatchSize.Key), TrialFields.BatchSize.Rule);
        var baseLrs = grid.Get(TrialFields.BaseLr.Key);
        var exponents = grid.Get("lr-scaling");
        if (baseLrs is not null && exponents is not null)
            throw exponents.Error("cannot be combined with sweep.grid.base-lr: give one of them");
        var seeds = grid.Get(TrialFields.Seed.Key) is { } s ? Ints(s, TrialFields.Seed.Rule) : [seed];
        var maxIters = grid.Get(TrialFields.MaxIter.Key) is { } m ? Ints(m, TrialFields.MaxIter.Rule) : [maxIter];
        if (exponents is not null)
            return new GridSpec(grid.Path, batchSizes, Numbers(exponents, Rule.Finite), scaling.CouplingFor(exponents), seeds, maxIters, axes);
        if (baseLrs is null)
            throw grid.Error("needs base-lr = [ ... ] (learning rates) or lr-scaling = [ ... ] (exponents k, with sweep.scaling)");
        return new GridSpec(grid.Path, batchSizes, Numbers(baseLrs, TrialFields.BaseLr.Rule), null, seeds, maxIters, axes);
    }

    /// <summary>The grid's axes of named parameters (a list, or one value), in name order.</summary>
    private static IReadOnlyList<GridAxis> ReadAxes(SpecObject grid, bool takesParameters) =>
        NamedParameterKeys(grid, Keys.Grid, takesParameters).Order(StringComparer.Ordinal).Select(key =>
        {
            var list = grid.Get(key) ?? throw grid.Missing(key, "a value");
            return new GridAxis(key, NonEmpty(list, list.List(allowSingle: true).Select(value => ParameterSchema.Read(key, value)).ToList()));
        }).ToList();

    /// <summary>
    /// sweep.random: <c>samples</c> trials drawn from <c>seed</c> (the sweep's by default), with
    /// batch-size and one of base-lr and lr-scaling (exponents through sweep.scaling) required; each
    /// a distribution object (<c>{ log-uniform = [1e-3, 1e-1] }</c>), or a list to choose from.
    /// </summary>
    private static RandomSearchSpec? ReadRandom(SpecObject? block, Scaling scaling, int seed, bool takesParameters)
    {
        if (block is null || block.IsEmpty) return null;
        var named = NamedParameterKeys(block, Keys.Random, takesParameters);
        int samples = block.Required("samples", "how many trials to draw").Int(Rule.AtLeastOne);
        int drawSeed = block.Int("seed", seed, Rule.NonNegative);
        var batchSize = ReadDistribution(block.Required(TrialFields.BatchSize.Key, "a distribution, or a list to choose from"), DistributionKind.PositiveInteger);
        var baseLr = block.Get(TrialFields.BaseLr.Key);
        var exponents = block.Get("lr-scaling");
        if (baseLr is not null && exponents is not null) throw exponents.Error("cannot be combined with sweep.random.base-lr: give one of them");
        if (baseLr is null && exponents is null) throw block.Error("needs base-lr { ... } (learning rates) or lr-scaling { ... } (exponents k, with sweep.scaling)");
        var rate = exponents is not null ? ReadDistribution(exponents, DistributionKind.Real) : ReadDistribution(baseLr!, DistributionKind.PositiveReal);
        var coupling = exponents is null ? null : scaling.CouplingFor(exponents);
        var parameters = named.Order(StringComparer.Ordinal).Select(key =>
        {
            var value = block.Get(key) ?? throw block.Missing(key, "a value");
            ParameterSchema.CheckName(key, value);
            return (key, ReadDistribution(value, DistributionKind.Any, key), value);
        }).ToList();
        return new RandomSearchSpec(block.Path, samples, (ulong)drawSeed, batchSize, rate, coupling, parameters);
    }

    /// <summary>What a random-search key's values must be.</summary>
    private enum DistributionKind { PositiveInteger, PositiveReal, Real, Any }

    /// <summary>A distribution object with exactly one of choice, uniform, log-uniform, int-uniform, int-log-uniform; or a list (or one value) to choose from.</summary>
    private static Distribution ReadDistribution(SpecValue value, DistributionKind kind, string? parameter = null)
    {
        if (value.Shape != HoconShape.Object) return Choice(value, value, kind, parameter);
        var block = value.Object();
        block.RejectUnknownKeys(Keys.Distribution);
        var given = Keys.Distribution.Where(k => block.Get(k) is not null).ToList();
        if (given.Count != 1) throw value.Error($"give exactly one of {string.Join(", ", Keys.Distribution)}");
        string name = given[0];
        var range = block.Get(name)!;
        if (name == "choice") return Choice(range, range, kind, parameter);
        var bounds = range.List(allowSingle: false);
        if (bounds.Count != 2) throw range.Error("expected [low, high]");
        bool log = name.Contains("log", StringComparison.Ordinal);
        if (name.StartsWith("int-", StringComparison.Ordinal))
        {
            if (kind is DistributionKind.PositiveReal or DistributionKind.Real) throw range.Error($"draws whole numbers: use uniform or log-uniform for {value.Path}");
            long low = bounds[0].Int(log || kind == DistributionKind.PositiveInteger ? Rule.Positive : Rule.Finite), high = bounds[1].Int(Rule.Finite);
            if (high < low) throw range.Error($"the high end {high} is below the low end {low}");
            return new Distribution.Integer(low, high, log);
        }
        if (kind == DistributionKind.PositiveInteger) throw range.Error("draws reals: a batch size is a whole number (use int-uniform, int-log-uniform or choice)");
        double lowReal = bounds[0].Number(log || kind == DistributionKind.PositiveReal ? Rule.Positive : Rule.Finite), highReal = bounds[1].Number(Rule.Finite);
        if (!(highReal > lowReal)) throw range.Error($"the high end {highReal} must be above the low end {lowReal}");
        return new Distribution.Real(lowReal, highReal, log);
    }

    private static Distribution Choice(SpecValue list, SpecValue where, DistributionKind kind, string? parameter)
    {
        var items = NonEmpty(list, list.List(allowSingle: true).ToList());
        return new Distribution.Choice(items.Select(item => kind switch
        {
            DistributionKind.PositiveInteger => ParameterValue.Integer(item.Int(Rule.Positive)),
            DistributionKind.PositiveReal => ParameterValue.Real(item.Number(Rule.Positive)),
            DistributionKind.Real => ParameterValue.Real(item.Number(Rule.Finite)),
            _ => ParameterSchema.Read(parameter!, item).Value,
        }).ToList());
    }

    private static SyntheticSpec ReadSynthetic(SpecObject? synthetic, MergedTrials trials)
    {
        var defaults = new SyntheticSpec();
        if (synthetic is null) return defaults;
        synthetic.RejectUnknownKeys(Keys.Synthetic);
        double iterationMs = synthetic.Number("iteration-ms", defaults.IterationMs, Rule.NonNegative);
        double divergentLr = synthetic.Number("divergent-lr", defaults.DivergentLr, Rule.Positive);
        var faults = new List<SyntheticFault>();
        if (synthetic.Get("faults") is { } list)
        {
            var names = trials.Trials.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var item in list.List(allowSingle: false))
                faults.Add(ReadFault(item.Object(), trials, names));
        }
        return new SyntheticSpec(iterationMs, divergentLr, faults);
    }

    /// <summary>
    /// sweep.command: required with <c>model = command</c> and refused with any other model. Its
    /// arguments may name only the trial's parameters and <c>${spec-dir}</c>; the program must exist
    /// now (a path, relative to the spec's folder through <c>${spec-dir}</c>, or a name on PATH), so
    /// that a sweep of a missing program is refused before anything is persisted.
    /// </summary>
    private static CommandSpec? ReadCommand(SpecObject sweep, ModelKind model, SpecSource source, string baseDirectory, IReadOnlyCollection<string> parameters)
    {
        var command = sweep.Object("command");
        if (model != ModelKind.Command)
            return command is null ? null : throw command.Error("is for model = command only");
        if (command is null) throw source.Error("sweep.command", "missing (model = command needs command { arguments = [\"program\", \"arg\", ...] })");
        command.RejectUnknownKeys(Keys.Command);
        var arguments = command.Required("arguments");
        var texts = arguments.List(allowSingle: false).Select(a => a.Text()).ToList();
        if (texts.Count == 0) throw arguments.Error("must name the program to run");
        // The spec file's folder (Load passes it as the base directory).
        string specDirectory = Path.GetFullPath(baseDirectory);
        foreach (var (text, i) in texts.Select((t, i) => (t, i)))
        {
            if (CommandSpec.UnknownPlaceholder(text, parameters) is { } unknown) throw source.Error($"{arguments.Path}[{i}]", CommandSpec.UnknownPlaceholderProblem(unknown, parameters));
        }
        string program = texts[0].Replace("${" + CommandSpec.SpecDirectoryPlaceholder + "}", specDirectory, StringComparison.Ordinal);
        if (CommandSpec.Placeholder.IsMatch(program)) throw source.Error($"{arguments.Path}[0]", "the program itself cannot be a trial parameter");
        if (CommandSpec.FindProgram(program, specDirectory) is null)
            throw source.Error($"{arguments.Path}[0]", program.Contains('/') ? $"no such program: {Path.GetFullPath(program, specDirectory)} (or it is not executable)" : $"program '{program}' is not on PATH");
        double grace = command.Get("grace-period")?.Seconds(Rule.NonNegative) ?? CommandSpec.DefaultGraceSeconds;
        var pattern = command.Get("out-of-memory-pattern");
        string oom = pattern?.Text() ?? CommandSpec.DefaultOutOfMemoryPattern;
        try
        {
            _ = new System.Text.RegularExpressions.Regex(oom);
        }
        catch (ArgumentException e)
        {
            throw pattern!.Error($"not a regular expression: {e.Message}");
        }
        return new CommandSpec(texts, specDirectory, grace, oom);
    }

    /// <summary>
    /// sweep.early-stopping: off when absent. The policy is required; the grace period defaults to
    /// the test interval (the first test point after 0), in images the test interval × the sweep's
    /// smallest batch size (the first test point of its smallest batch); a key of another policy is refused.
    /// </summary>
    private static EarlyStoppingSpec? ReadEarlyStopping(SpecObject? block, int testInterval, int smallestBatch)
    {
        if (block is null) return null;
        block.RejectUnknownKeys(Keys.EarlyStopping);
        var policy = block.Required("policy", "asha, median or plateau").Choice(StoppingPolicies);
        string[] own = policy switch
        {
            EarlyStoppingPolicy.Asha => ["reduction-factor"],
            EarlyStoppingPolicy.Median => ["min-trials"],
            _ => ["patience", "min-delta"],
        };
        foreach (var key in new[] { "reduction-factor", "min-trials", "patience", "min-delta" }.Except(own))
        {
            if (block.Get(key) is { } misplaced)
                throw misplaced.Error($"is not a key of policy = {StoppingPolicies.Single(p => p.Value == policy).Key} (it belongs to {StoppingPolicies.Single(p => p.Value == OwnerOf(key)).Key})");
        }
        var defaults = new EarlyStoppingSpec(policy);
        var resource = block.Choice("resource", defaults.Resource, StoppingResources);
        return new EarlyStoppingSpec(
            policy,
            block.Choice("metric", defaults.Metric, StoppingMetrics),
            block.Int("grace-period", resource == StoppingResource.Images ? testInterval * smallestBatch : testInterval, Rule.Positive),
            block.Number("reduction-factor", defaults.ReductionFactor, Rule.AboveOne),
            block.Int("min-trials", defaults.MinTrials, Rule.AtLeastOne),
            block.Int("patience", defaults.Patience, Rule.AtLeastOne),
            block.Number("min-delta", defaults.MinDelta, Rule.NonNegative),
            resource);

        static EarlyStoppingPolicy OwnerOf(string key) => key switch
        {
            "reduction-factor" => EarlyStoppingPolicy.Asha,
            "min-trials" => EarlyStoppingPolicy.Median,
            _ => EarlyStoppingPolicy.Plateau,
        };
    }

    /// <summary>
    /// sweep.plugin: required with <c>model = plugin</c> and refused with any other model. The
    /// assembly (relative to the spec's folder) must be a .NET assembly holding the public type, with
    /// a public parameterless constructor, that implements <c>Sweep.Training.ITrialModel</c>: checked
    /// now by reading its metadata (<see cref="PluginCheck"/>, no code of it runs and LibTorch is not
    /// loaded), so that a sweep of a plug-in that cannot run is refused before anything is persisted.
    /// </summary>
    private static PluginSpec? ReadPlugin(SpecObject sweep, ModelKind model, SpecSource source, string baseDirectory)
    {
        var plugin = sweep.Object("plugin");
        if (model != ModelKind.Plugin)
            return plugin is null ? null : throw plugin.Error("is for model = plugin only");
        if (plugin is null) throw source.Error("sweep.plugin", "missing (model = plugin needs plugin { assembly = PATH, type = NAME })");
        plugin.RejectUnknownKeys(Keys.Plugin);
        var assembly = plugin.Required("assembly", "the plug-in's .dll, relative to the spec's folder");
        var type = plugin.Required("type", "the full name of the type that implements Sweep.Training.ITrialModel");
        string assemblyText = assembly.Text();
        if (assemblyText.Length == 0) throw assembly.Error("must not be empty");
        string typeName = type.Text();
        if (typeName.Length == 0) throw type.Error("must not be empty");
        // A path in the file is relative to the file; one typed in a --set flag is relative to where it was typed.
        string relativeTo = assembly.Source.OverrideOf(assembly.Path) is null ? baseDirectory : Directory.GetCurrentDirectory();
        string assemblyPath = Path.GetFullPath(assemblyText, Path.GetFullPath(relativeTo));
        if (PluginCheck.AssemblyProblem(assemblyPath) is { } assemblyProblem) throw assembly.Error(assemblyProblem);
        if (PluginCheck.TypeProblem(assemblyPath, typeName) is { } typeProblem) throw type.Error(typeProblem);
        return new PluginSpec(assemblyPath, typeName);
    }

    private static SyntheticFault ReadFault(SpecObject fault, MergedTrials trials, HashSet<string> trialNames)
    {
        fault.RejectUnknownKeys(Keys.Fault);
        var trial = fault.Required("trial");
        // A name merged into another trial (same settings) means that trial.
        string name = trials.Resolve(trial.Text(), trialNames) ?? throw trial.Error($"no trial named \"{trial.Text()}\" in the expanded sweep");
        int atIteration = fault.Required("at-iteration").Int(Rule.NonNegative);
        var kind = fault.Required("kind").Choice(FaultKinds);
        var attempts = fault.Get("attempts") is { } a ? Ints(a, Rule.Positive) : [1];
        return new SyntheticFault(name, atIteration, kind, attempts);
    }

    private static IReadOnlyList<int> Ints(SpecValue list, Rule rule) => NonEmpty(list, list.List(allowSingle: true).Select(v => v.Int(rule)).ToList());

    private static IReadOnlyList<double> Numbers(SpecValue list, Rule rule) => NonEmpty(list, list.List(allowSingle: true).Select(v => v.Number(rule)).ToList());

    /// <summary>An empty list in a grid would silently remove every cell.</summary>
    private static List<T> NonEmpty<T>(SpecValue list, List<T> values) => values.Count > 0 ? values : throw list.Error("must list at least one value");

    /// <summary>sweep.scaling: the reference point of the batch/learning-rate coupling, and its exponent for halve-batch.</summary>
    private sealed record Scaling(SpecObject? Spec, int? ReferenceBatchSize, double? ReferenceLr, double Exponent)
    {
        public LrCoupling CouplingFor(SpecValue exponents)
        {
            const string why = "required when sweep.grid.lr-scaling is used";
            if (Spec is null) throw exponents.Error("needs sweep.scaling { reference-batch-size, reference-lr } to turn exponents into learning rates");
            if (ReferenceBatchSize is not { } batch) throw Spec.Missing("reference-batch-size", why);
            if (ReferenceLr is not { } lr) throw Spec.Missing("reference-lr", why);
            return new LrCoupling(batch, lr);
        }
    }
}
