using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Specs;

/// <summary>
/// A trial is validated in one place (<see cref="TrialFields"/>): a value a field's rule refuses is
/// refused by the spec loader at its key and by <see cref="TrialSpec.Problems"/> (what `sweep train`
/// and the worker check) with the same words.
/// </summary>
public sealed class TrialFieldsTests
{
    private const string Grid = "grid = { batch-size = [32], base-lr = [0.01] }";

    /// <summary>Each field, where a spec sets it, a value its rule refuses, and the trial spec holding that value.</summary>
    public static TheoryData<string, string, string, double> Fields => new()
    {
        // field key, spec line, the key path in the message, the bad value
        { "batch-size", "cases = [ { name = a, batch-size = 0, base-lr = 0.1 } ]", "sweep.cases[0].batch-size", 0 },
        { "base-lr", "cases = [ { name = a, batch-size = 8, base-lr = -0.5 } ]", "sweep.cases[0].base-lr", -0.5 },
        { "test-batch-size", "test-batch-size = -3\n" + Grid, "sweep.test-batch-size", -3 },
        { "max-iter", "max-iter = 0\n" + Grid, "sweep.max-iter", 0 },
        { "test-interval", "test-interval = 0\n" + Grid, "sweep.test-interval", 0 },
        { "seed", "seed = -1\n" + Grid, "sweep.seed", -1 },
        { "momentum", "solver { momentum = 1 }\n" + Grid, "sweep.solver.momentum", 1 },
        { "weight-decay", "solver { weight-decay = -0.1 }\n" + Grid, "sweep.solver.weight-decay", -0.1 },
        { "gamma", "solver { gamma = -2 }\n" + Grid, "sweep.solver.gamma", -2 },
        { "power", "solver { power = -0.75 }\n" + Grid, "sweep.solver.power", -0.75 },
        { "step-size", "solver { lr-policy = step, step-size = 0 }\n" + Grid, "sweep.solver.step-size", 0 },
        { "train-count", "dataset { train-count = 0 }\n" + Grid, "sweep.dataset.train-count", 0 },
        { "test-count", "dataset { test-count = -5 }\n" + Grid, "sweep.dataset.test-count", -5 },
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public void A_value_a_field_refuses_is_refused_with_the_same_words_by_the_spec_and_by_the_trial_check(string key, string specLine, string keyPath, double bad)
    {
        var field = AllFields().Single(f => f.Key == key);
        var spec = $"sweep {{\n  name = bad\n  model = synthetic\n  {specLine}\n}}\n";

        var fromSpec = Assert.Throws<InvalidInputException>(() => SweepSpecLoader.Parse(spec, "spec.conf", Path.GetTempPath(), []));
        var fromTrial = With(key, bad).Problems();

        Assert.Equal($"spec.conf: {keyPath}: {field.Rule.Requirement}, got {bad}", fromSpec.Message);
        Assert.Equal([$"{key} {field.Rule.Requirement}, got {bad}"], fromTrial);
    }

    [Fact]
    public void Every_field_of_a_trial_is_covered_and_the_papers_case_breaks_no_rule()
    {
        Assert.Equal(AllFields().Select(f => f.Key).Order(), Fields.Select(row => (string)row[0]).Order());
        Assert.Empty(With("none", 0).Problems());
    }

    private static IEnumerable<TrialField> AllFields() =>
        typeof(TrialFields).GetFields().Select(f => (TrialField)f.GetValue(null)!);

    /// <summary>CASE1 with one field set to <paramref name="value"/> (the step policy when the field is step-size, so that it counts).</summary>
    private static TrialSpec With(string key, double value)
    {
        var spec = TrialSpec.PaperCase1(new DatasetSpec("unused"));
        int whole = (int)value;
        return key switch
        {
            "batch-size" => spec with { BatchSize = whole },
            "base-lr" => spec with { BaseLr = value },
            "test-batch-size" => spec with { TestBatchSize = whole },
            "max-iter" => spec with { MaxIter = whole },
            "test-interval" => spec with { TestInterval = whole },
            "seed" => spec with { Seed = whole },
            "momentum" => spec with { Solver = spec.Solver with { Momentum = value } },
            "weight-decay" => spec with { Solver = spec.Solver with { WeightDecay = value } },
            "gamma" => spec with { Solver = spec.Solver with { Gamma = value } },
            "power" => spec with { Solver = spec.Solver with { Power = value } },
            "step-size" => spec with { Solver = spec.Solver with { Policy = LearningRatePolicy.Step, StepSize = whole } },
            "train-count" => spec with { Dataset = spec.Dataset with { TrainCount = whole } },
            "test-count" => spec with { Dataset = spec.Dataset with { TestCount = whole } },
            _ => spec,
        };
    }
}
