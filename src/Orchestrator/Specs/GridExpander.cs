using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Sweep.Protocol;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Specs;

/// <summary>
/// A trial before merging: its proposed name, what it computes, the spec key it came from (for
/// errors), and whether the user named it (a case) rather than the grid.
/// </summary>
internal sealed record TrialCandidate(string Name, TrialSpec Spec, string Path, bool Named = false);

/// <summary>A named case that has the settings of an earlier named case, and so is that trial.</summary>
internal sealed record MergedCase(TrialCandidate Kept, TrialCandidate Merged);

/// <summary>
/// The trials of a sweep after identical ones are merged; <see cref="Aliases"/> maps the name of
/// every merged candidate to the trial it became (so that a fault aimed at it finds it), and
/// <see cref="MergedCases"/> lists the named cases merged into other named cases (to warn about).
/// </summary>
internal sealed record MergedTrials(IReadOnlyList<TrialDefinition> Trials, IReadOnlyDictionary<string, string> Aliases, IReadOnlyList<MergedCase> MergedCases)
{
    /// <summary>The trial a fault or filter aimed at <paramref name="name"/> means: the trial of that name, else the one it was merged into.</summary>
    public string? Resolve(string name, IReadOnlySet<string> names) =>
        names.Contains(name) ? name : Aliases.GetValueOrDefault(name);
}

/// <summary>The batch/learning-rate coupling lr = reference-lr × (batch / reference-batch-size)^k.</summary>
internal sealed record LrCoupling(int ReferenceBatchSize, double ReferenceLr)
{
    public double Rate(int batchSize, double exponent) => ReferenceLr * Math.Pow((double)batchSize / ReferenceBatchSize, exponent);
}

/// <summary>What every grid cell shares: the sweep-level settings.</summary>
internal sealed record TrialDefaults(int? TestBatchSize, int TestInterval, SolverSpec Solver, DatasetSpec Dataset)
{
    public TrialSpec Spec(int batchSize, int? testBatchSize, double baseLr, int maxIter, int seed, TrialParameters? parameters) =>
        // The paper tests with twice the training batch; unchecked so that an absurd batch overflows into a value Problems() refuses.
        new(batchSize, testBatchSize ?? TestBatchSize ?? unchecked(2 * batchSize), baseLr, maxIter, TestInterval, seed, Solver, Dataset, parameters);
}

/// <summary>A grid axis of a named parameter (<c>dropout = [0.1, 0.3]</c>): its name and values, in spec order.</summary>
internal sealed record GridAxis(string Name, IReadOnlyList<GivenParameter> Values);

/// <summary>
/// A grid: the cartesian product of its lists. <see cref="Rates"/> holds base learning rates, or the
/// exponents k of <see cref="Coupling"/> when it is set (lr-scaling); <see cref="Axes"/> are the named
/// parameters' axes, in name order.
/// </summary>
internal sealed record GridSpec(
    string Path,
    IReadOnlyList<int> BatchSizes,
    IReadOnlyList<double> Rates,
    LrCoupling? Coupling,
    IReadOnlyList<int> Seeds,
    IReadOnlyList<int> MaxIters,
    IReadOnlyList<GridAxis> Axes)
{
    /// <summary>The number of cells, from the list lengths alone (Int128: several long lists can overflow a long).</summary>
    public Int128 Count => Axes.Aggregate((Int128)BatchSizes.Count * Rates.Count * Seeds.Count * MaxIters.Count, (count, axis) => count * axis.Values.Count);
}

/// <summary>Turns cases and grids into the sweep's trials: stable ids, readable names, identical cells merged.</summary>
internal static class GridExpander
{
    /// <summary>
    /// The cells of <paramref name="grid"/> in order batch-size, rate, seed, max-iter, then the named
    /// parameters' axes (name order); lazily, so a huge grid is never held twice. A cell's name is
    /// <c>bBATCH-lrRATE</c> (or <c>-kEXPONENT</c>) and, for each list of more than one value,
    /// <c>-sSEED</c>, <c>-itMAX</c>, <c>-NAMEVALUE</c> (<c>b64-lr0.01-dropout0.3</c>).
    /// </summary>
    public static IEnumerable<TrialCandidate> Cells(GridSpec grid, TrialDefaults defaults, ParameterSchema schema)
    {
        string seedSuffix(int seed) => grid.Seeds.Count > 1 ? $"-s{seed}" : "";
        string iterSuffix(int maxIter) => grid.MaxIters.Count > 1 ? $"-it{maxIter}" : "";
        var combinations = AxisCombinations(grid.Axes).Select(combination => (
            Suffix: string.Concat(combination.Where(c => c.Axis.Values.Count > 1).Select(c => $"-{c.Axis.Name}{c.Value.Value.Text}")),
            Parameters: schema.Complete(
                combination.ToDictionary(c => c.Axis.Name, c => c.Value.Value, StringComparer.Ordinal),
                name => new InvalidInputException($"{grid.Path}: has no {name} (give it as an axis, or a default in sweep.parameters)")))).ToList();
        foreach (int batch in grid.BatchSizes)
        {
            foreach (double rate in grid.Rates)
            {
                double baseLr = grid.Coupling?.Rate(batch, rate) ?? rate;
                string stem = grid.Coupling is null ? $"b{batch}-lr{Short(rate)}" : $"b{batch}-k{Short(rate)}";
                foreach (int seed in grid.Seeds)
                {
                    foreach (int maxIter in grid.MaxIters)
                    {
                        foreach (var (suffix, parameters) in combinations)
                            yield return new TrialCandidate(stem + seedSuffix(seed) + iterSuffix(maxIter) + suffix, defaults.Spec(batch, null, baseLr, maxIter, seed, parameters), grid.Path);
                    }
                }
            }
        }
    }

    /// <summary>Every choice of one value per axis, the last axis varying fastest; one empty choice when there are no axes.</summary>
    private static IEnumerable<IReadOnlyList<(GridAxis Axis, GivenParameter Value)>> AxisCombinations(IReadOnlyList<GridAxis> axes)
    {
        IEnumerable<IReadOnlyList<(GridAxis, GivenParameter)>> combinations = [[]];
        foreach (var axis in axes)
            combinations = combinations.SelectMany(prefix => axis.Values.Select(value => (IReadOnlyList<(GridAxis, GivenParameter)>)[.. prefix, (axis, value)]));
        return combinations;
    }

    /// <summary>
    /// Keeps the first of every set of identical trials (same id, so a case wins over a grid cell) and
    /// makes names unique by appending -2, -3, …; hash sets keep it linear in the number of trials.
    /// The names of the candidates merged away become aliases of the trial they are.
    /// </summary>
    public static MergedTrials Merge(IEnumerable<TrialCandidate> candidates)
    {
        var trials = new List<TrialDefinition>();
        var indexById = new Dictionary<string, int>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var nextSuffix = new Dictionary<string, int>(StringComparer.Ordinal);
        // Only named cases are remembered (cases come before grid cells, so only a case can keep a case's place).
        var keptCases = new Dictionary<int, TrialCandidate>();
        var aliases = new Dictionary<string, string>(StringComparer.Ordinal);
        var mergedCases = new List<MergedCase>();
        foreach (var candidate in candidates)
        {
            string id = TrialId(candidate.Spec);
            if (indexById.TryGetValue(id, out int kept))
            {
                string keptName = trials[kept].Name;
                if (candidate.Name != keptName) aliases.TryAdd(candidate.Name, keptName);
                if (candidate.Named && keptCases.TryGetValue(kept, out var keptCase)) mergedCases.Add(new MergedCase(keptCase, candidate));
                continue;
            }
            indexById[id] = trials.Count;
            if (candidate.Named) keptCases[trials.Count] = candidate;
            trials.Add(new TrialDefinition(id, UniqueName(candidate.Name, names, nextSuffix), candidate.Spec));
        }
        return new MergedTrials(trials, aliases, mergedCases);
    }

    /// <summary>
    /// The first 12 hex digits of SHA-256 over everything that decides what the trial computes, in a
    /// fixed invariant form. The dataset's path is left out so that ids survive moving the data.
    /// </summary>
    public static string TrialId(TrialSpec spec)
    {
        var s = spec.Solver;
        string canonical = string.Create(CultureInfo.InvariantCulture,
            $"trial-v1;batch={spec.BatchSize};test-batch={spec.TestBatchSize};base-lr={spec.BaseLr:R};max-iter={spec.MaxIter};" +
            $"test-interval={spec.TestInterval};seed={spec.Seed};momentum={s.Momentum:R};weight-decay={s.WeightDecay:R};" +
            $"lr-policy={s.Policy};gamma={s.Gamma:R};power={s.Power:R};step-size={s.StepSize};" +
            $"train-count={spec.Dataset.TrainCount};test-count={spec.Dataset.TestCount}") +
            // Only trials with named parameters hash them: every trial without keeps the id it always had.
            (spec.Parameters is { Items.Count: > 0 } parameters ? $";parameters={parameters.Canonical()}" : "");
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(canonical), hash);
        return Convert.ToHexStringLower(hash[..6]);
    }

    /// <summary>A number as it reads best in a name: invariant and shortest round-trip (0.02, 0.0001, -1).</summary>
    public static string Short(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static string UniqueName(string name, HashSet<string> names, Dictionary<string, int> nextSuffix)
    {
        if (names.Add(name)) return name;
        // Remembering the next free suffix per name keeps many clashes on one name linear rather than quadratic.
        int suffix = nextSuffix.GetValueOrDefault(name, 2);
        while (!names.Add($"{name}-{suffix}")) suffix++;
        nextSuffix[name] = suffix + 1;
        return $"{name}-{suffix}";
    }
}
