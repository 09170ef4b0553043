using System.Diagnostics;
using Sweep.GpuWorker.Data;
using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Specs;

/// <summary>The shipped presets, --set overrides, the batch/LR coupling, merging, ids and the trial limit.</summary>
public sealed class SweepSpecLoaderTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-specs-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    /// <summary>The preset in the repository (the source of truth, not a copy in the build output).</summary>
    internal static string Preset(string name) => Path.Combine(RepositoryFiles.Root, "hocon", "sweeps", name);

    private static SweepDefinition Parse(string text, params string[] overrides) =>
        SweepSpecLoader.Parse(text, "spec.conf", Path.GetTempPath(), overrides);

    private string WriteSpec(string text, string name = "spec.conf")
    {
        var path = Path.Combine(temp, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void The_asha_preset_draws_24_coupled_lenet_trials_and_stops_with_asha()
    {
        var sweep = SweepSpecLoader.Load(Preset("asha-coupling.conf"), [], TextWriter.Null);

        Assert.Equal(ModelKind.Lenet, sweep.Model);
        Assert.Equal(new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, StoppingMetric.TestAccuracy, 1600, 3, Resource: StoppingResource.Images), sweep.EarlyStopping);
        // 24 draws; one at the reference batch (64) would be the reference trial whatever its k, so none is merged here.
        Assert.Equal(24, sweep.Trials.Count);
        foreach (var t in sweep.Trials)
        {
            Assert.InRange(t.Spec.BatchSize, 16, 256);
            double k = double.Parse(t.Name[(t.Name.IndexOf("-k", StringComparison.Ordinal) + 2)..], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(k, -1, 1);
            Assert.Equal(0.01 * Math.Pow(t.Spec.BatchSize / 64.0, k), t.Spec.BaseLr, 15);
        }
    }

    [Fact]
    public void The_paper_preset_is_table_1()
    {
        var path = Preset("paper-lenet.conf");
        var sweep = SweepSpecLoader.Load(path, []);

        var expected = new (string Name, int Batch, int TestBatch, double Lr)[]
        {
            ("CASE1", 64, 128, 0.01), ("CASE2", 32, 64, 0.01), ("CASE3", 128, 256, 0.01),
            ("CASE4", 64, 128, 0.04), ("CASE5", 64, 128, 0.001), ("CASE6", 32, 64, 0.02),
            ("CASE7", 64, 128, 0.0025), ("CASE8", 64, 128, 0.1), ("CASE9", 32, 64, 0.005),
        };
        Assert.Equal(expected, sweep.Trials.Select(t => (t.Name, t.Spec.BatchSize, t.Spec.TestBatchSize, t.Spec.BaseLr)));
        Assert.Equal("paper-lenet", sweep.Name);
        Assert.Equal(path, sweep.Source);
        Assert.Equal(ModelKind.Lenet, sweep.Model);
        foreach (var trial in sweep.Trials)
        {
            Assert.Equal(1000, trial.Spec.MaxIter);
            Assert.Equal(100, trial.Spec.TestInterval);
            Assert.Equal(1, trial.Spec.Seed);
            Assert.Equal(new SolverSpec(Momentum: 0.9, WeightDecay: 0.0005, Policy: LearningRatePolicy.Inv, Gamma: 0.001, Power: 0.75), trial.Spec.Solver);
            Assert.Equal(new DatasetSpec(MnistData.EmbeddedPath), trial.Spec.Dataset);
            Assert.Empty(trial.Spec.Problems());
            Assert.Matches("^[0-9a-f]{12}$", trial.Id);
        }
        Assert.Equal(9, sweep.Trials.Select(t => t.Id).Distinct().Count());
        Assert.Equal(10.0, sweep.Divergence.LossFactor);
        Assert.Null(sweep.Divergence.ChanceAfter);
        Assert.Equal(OutOfMemoryPolicy.Fail, sweep.OnOutOfMemory);
        Assert.Equal(-1.0, sweep.CouplingExponent);
    }

    [Fact]
    public void Set_max_iter_changes_every_trial_and_is_recorded_in_the_source()
    {
        var path = Preset("paper-lenet.conf");
        var sweep = SweepSpecLoader.Load(path, ["sweep.max-iter=300"]);

        Assert.All(sweep.Trials, t => Assert.Equal(300, t.Spec.MaxIter));
        Assert.Equal($"{path} --set sweep.max-iter=300", sweep.Source);
        var original = SweepSpecLoader.Load(path, []);
        Assert.Empty(sweep.Trials.Select(t => t.Id).Intersect(original.Trials.Select(t => t.Id)));
    }

    [Fact]
    public void Later_overrides_win_over_earlier_ones_and_over_the_file()
    {
        var sweep = SweepSpecLoader.Load(Preset("paper-lenet.conf"), ["sweep.max-iter=300", "sweep.solver.gamma=0.0001", "sweep.max-iter = 200"]);

        Assert.All(sweep.Trials, t => Assert.Equal(200, t.Spec.MaxIter));
        Assert.All(sweep.Trials, t => Assert.Equal(0.0001, t.Spec.Solver.Gamma));
        Assert.All(sweep.Trials, t => Assert.Equal(0.75, t.Spec.Solver.Power));
    }

    [Fact]
    public void Overrides_replace_lists_and_take_any_hocon_value()
    {
        var sweep = SweepSpecLoader.Load(Preset("synthetic-faults.conf"),
            ["sweep.grid.batch-size=[16, 128]", "sweep.grid.base-lr=0.05", "sweep.on-out-of-memory=fail", "sweep.name=\"renamed sweep\"", "sweep.synthetic.faults=[]"]);

        Assert.Equal(["small-batch", "b16-lr0.05", "b128-lr0.05"], sweep.Trials.Select(t => t.Name));
        Assert.Equal(OutOfMemoryPolicy.Fail, sweep.OnOutOfMemory);
        Assert.Equal("renamed sweep", sweep.Name);
        Assert.Empty(sweep.Synthetic.FaultList);
    }

    [Fact]
    public void The_synthetic_preset_has_its_faults_retry_and_out_of_memory_policy()
    {
        var sweep = SweepSpecLoader.Load(Preset("synthetic-faults.conf"), []);

        Assert.Equal(ModelKind.Synthetic, sweep.Model);
        Assert.Equal(["small-batch", "b32-lr0.01", "b32-lr0.02", "b32-lr0.1", "b64-lr0.01", "b64-lr0.02", "b64-lr0.1"], sweep.Trials.Select(t => t.Name));
        Assert.All(sweep.Trials, t => Assert.Equal((200, 50), (t.Spec.MaxIter, t.Spec.TestInterval)));
        Assert.Equal(new RetryPolicy(3, 0.2), sweep.Retry);
        Assert.Equal(OutOfMemoryPolicy.HalveBatch, sweep.OnOutOfMemory);
        Assert.Equal(5.0, sweep.Synthetic.IterationMs);
        var faults = sweep.Synthetic.FaultList;
        Assert.Equal(2, faults.Count);
        Assert.Equal(("b32-lr0.02", 60, FaultKind.Exception), (faults[0].Trial, faults[0].AtIteration, faults[0].Kind));
        Assert.Equal(("b64-lr0.01", 0, FaultKind.OutOfMemory), (faults[1].Trial, faults[1].AtIteration, faults[1].Kind));
        Assert.All(faults, f => Assert.Equal([1], f.Attempts));
        Assert.Equal(64, sweep.Trials.Single(t => t.Name == faults[1].Trial).Spec.BatchSize);
    }

    [Fact]
    public void Lr_scaling_couples_the_rate_to_the_batch()
    {
        var sweep = Parse("""
            sweep {
              name = coupling, model = synthetic
              scaling { reference-batch-size = 64, reference-lr = 0.01 }
              grid { batch-size = [16, 32, 128, 256], lr-scaling = [1, 0.5, 0, -1] }
            }
            """);

        var lr = sweep.Trials.ToDictionary(t => t.Name, t => t.Spec.BaseLr);
        Assert.Equal(0.02, lr["b32-k-1"], 1e-12);
        Assert.Equal(0.02, lr["b128-k1"], 1e-12);
        Assert.Equal(0.02, lr["b256-k0.5"], 1e-12);
        Assert.Equal(0.01, lr["b16-k0"], 1e-12);
        Assert.Equal(0.0025, lr["b16-k1"], 1e-12);
        Assert.Equal(0.04, lr["b16-k-1"], 1e-12);
        Assert.Equal(0.005, lr["b16-k0.5"], 1e-12);
        Assert.Equal(16, sweep.Trials.Count);
    }

    [Fact]
    public void The_scaling_rules_preset_merges_the_four_identical_batch_64_cells_into_17_trials()
    {
        var sweep = SweepSpecLoader.Load(Preset("scaling-rules.conf"), []);

        string[] expected =
        [
            "b16-k1", "b16-k0.5", "b16-k0", "b16-k-1",
            "b32-k1", "b32-k0.5", "b32-k0", "b32-k-1",
            "b64-k1",
            "b128-k1", "b128-k0.5", "b128-k0", "b128-k-1",
            "b256-k1", "b256-k0.5", "b256-k0", "b256-k-1",
        ];
        Assert.Equal(expected, sweep.Trials.Select(t => t.Name));
        Assert.Equal(17, sweep.Trials.Select(t => t.Id).Distinct().Count());
        Assert.Equal(0.01, sweep.Trials.Single(t => t.Name == "b64-k1").Spec.BaseLr, 1e-12);
        Assert.All(sweep.Trials, t => Assert.Equal(2 * t.Spec.BatchSize, t.Spec.TestBatchSize));
        Assert.Equal(-1.0, sweep.CouplingExponent);
    }

    [Fact]
    public void A_case_wins_over_an_identical_grid_cell_and_clashing_names_get_a_suffix()
    {
        var sweep = Parse("""
            sweep {
              name = merge, model = synthetic
              cases = [
                { name = reference, batch-size = 64, base-lr = 0.01 }
                { name = b32-lr0.01, batch-size = 32, base-lr = 0.5 }
              ]
              grid { batch-size = [32, 64], base-lr = [0.01, 0.01] }
            }
            """);

        Assert.Equal(["reference", "b32-lr0.01", "b32-lr0.01-2"], sweep.Trials.Select(t => t.Name));
        Assert.Equal([64, 32, 32], sweep.Trials.Select(t => t.Spec.BatchSize));
        Assert.Equal([0.01, 0.5, 0.01], sweep.Trials.Select(t => t.Spec.BaseLr));
    }

    [Fact]
    public void Named_cases_with_the_same_settings_are_one_trial_that_faults_aimed_at_either_find_with_a_warning_naming_both()
    {
        var warnings = new StringWriter();
        var sweep = SweepSpecLoader.Parse("""
            sweep {
              name = twins, model = synthetic
              cases = [
                { name = first, batch-size = 32, base-lr = 0.01 }
                { name = other, batch-size = 64, base-lr = 0.01 }
                { name = second, batch-size = 32, base-lr = 0.01, max-iter = 1000 }
              ]
              synthetic { faults = [ { trial = second, at-iteration = 5, kind = exception }, { trial = first, at-iteration = 7, kind = nan } ] }
            }
            """, "spec.conf", Path.GetTempPath(), [], warnings);

        Assert.Equal(["first", "other"], sweep.Trials.Select(t => t.Name));
        Assert.Equal([("first", 5, FaultKind.Exception), ("first", 7, FaultKind.Nan)], sweep.Synthetic.FaultList.Select(f => (f.Trial, f.AtIteration, f.Kind)));
        var warning = Assert.Single(warnings.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(
            "sweep: warning: spec.conf: sweep.cases[2]: case \"second\" has the same settings as case \"first\" (sweep.cases[0]): " +
            "they are one trial, run once as \"first\" (faults aimed at \"second\" apply to it)", warning.TrimEnd('\r'));
    }

    [Fact]
    public void A_fault_aimed_at_a_grid_cell_merged_into_another_finds_that_trial_without_a_warning()
    {
        var warnings = new StringWriter();
        var sweep = SweepSpecLoader.Load(Preset("scaling-rules.conf"), ["sweep.synthetic.faults=[ { trial = b64-k0, at-iteration = 3, kind = nan } ]"], warnings);

        Assert.DoesNotContain(sweep.Trials, t => t.Name == "b64-k0");
        Assert.Equal("b64-k1", Assert.Single(sweep.Synthetic.FaultList).Trial);
        Assert.Equal("", warnings.ToString());
    }

    [Theory]
    [InlineData("1e3", 1000)]
    [InlineData("1E3", 1000)]
    [InlineData("2.0E2", 200)]
    [InlineData("3.5e2", 350)]
    [InlineData("1e+3", 1000)]
    [InlineData("300.0", 300)]
    public void Whole_numbers_in_exponent_form_are_accepted_in_the_spec_and_in_set_flags_alike(string written, int value)
    {
        var inSpec = Parse($"sweep {{ name = e, model = synthetic, max-iter = {written}, grid {{ batch-size = [{written}], base-lr = [1e-3] }} }}");
        var inFlags = Parse("sweep { name = e, model = synthetic, grid { batch-size = [8], base-lr = [1e-3] } }", $"sweep.max-iter={written}", $"sweep.grid.batch-size=[{written}]");

        foreach (var sweep in new[] { inSpec, inFlags })
        {
            var trial = Assert.Single(sweep.Trials);
            Assert.Equal((value, value, 0.001), (trial.Spec.BatchSize, trial.Spec.MaxIter, trial.Spec.BaseLr));
            Assert.Equal($"b{value}-lr0.001", trial.Name);
        }
        Assert.Equal(inSpec.Trials[0].Id, inFlags.Trials[0].Id);
    }

    [Fact]
    public void Grid_names_show_seed_and_max_iter_only_when_those_lists_vary()
    {
        var sweep = Parse("""
            sweep {
              name = names, model = synthetic, seed = 7
              grid { batch-size = 32, base-lr = [0.0001, 0.02], seed = [1, 2], max-iter = [100] }
            }
            """);

        Assert.Equal(["b32-lr0.0001-s1", "b32-lr0.0001-s2", "b32-lr0.02-s1", "b32-lr0.02-s2"], sweep.Trials.Select(t => t.Name));
        Assert.All(sweep.Trials, t => Assert.Equal(100, t.Spec.MaxIter));

        var iterations = Parse("sweep { name = n, model = synthetic, seed = 7, grid { batch-size = [32], base-lr = [0.01], max-iter = [100, 200] } }");
        Assert.Equal(["b32-lr0.01-it100", "b32-lr0.01-it200"], iterations.Trials.Select(t => t.Name));
        Assert.All(iterations.Trials, t => Assert.Equal(7, t.Spec.Seed));
    }

    [Fact]
    public void Ids_are_stable_change_with_the_computation_and_ignore_where_the_data_lives()
    {
        var here = Directory.CreateDirectory(Path.Combine(temp, "data-here")).FullName;
        var there = Directory.CreateDirectory(Path.Combine(temp, "moved", "data-there")).FullName;
        string Spec(string dataset, double lr) => $$"""
            sweep {
              name = ids
              dataset { path = "{{dataset}}", train-count = 500 }
              cases = [ { name = a, batch-size = 64, base-lr = {{lr}} } ]
            }
            """;

        string Id(string dataset, double lr) => Parse(Spec(dataset, lr)).Trials.Single().Id;

        Assert.Equal(Id(here, 0.01), Id(here, 0.01));
        Assert.NotEqual(Id(here, 0.01), Id(here, 0.02));
        Assert.Equal(Id(here, 0.01), Id(there, 0.01));
        Assert.Equal(there, Parse(Spec(there, 0.01)).Trials.Single().Spec.Dataset.Path);
        Assert.Equal(500, Parse(Spec(there, 0.01)).Trials.Single().Spec.Dataset.TrainCount);
        Assert.Equal(SweepSpecLoader.TrialId(Parse(Spec(here, 0.01)).Trials.Single().Spec), Id(here, 0.01));
    }

    [Fact]
    public void A_relative_dataset_path_is_resolved_against_the_spec_folder()
    {
        Directory.CreateDirectory(Path.Combine(temp, "mnist"));
        var path = WriteSpec("sweep { name = rel, dataset = { path = mnist }, cases = [ { name = a, batch-size = 8, base-lr = 0.01 } ] }");

        var sweep = SweepSpecLoader.Load(path, []);

        Assert.Equal(Path.Combine(temp, "mnist"), sweep.Trials.Single().Spec.Dataset.Path);
    }

    [Fact]
    public void Test_batch_defaults_to_twice_the_batch_unless_the_sweep_or_case_sets_it()
    {
        var sweep = Parse("""
            sweep {
              name = tb, model = synthetic
              cases = [ { name = own, batch-size = 16, test-batch-size = 100, base-lr = 0.01 } ]
              grid { batch-size = [8], base-lr = [0.01] }
            }
            """);
        Assert.Equal([100, 16], sweep.Trials.Select(t => t.Spec.TestBatchSize));

        var fixedTestBatch = Parse("sweep { name = tb, model = synthetic, test-batch-size = 500, grid { batch-size = [8, 16], base-lr = [0.01] } }");
        Assert.All(fixedTestBatch.Trials, t => Assert.Equal(500, t.Spec.TestBatchSize));
    }

    [Theory]
    [InlineData("2", 2.0)]
    [InlineData("0.25", 0.25)]
    [InlineData("2s", 2.0)]
    [InlineData("500ms", 0.5)]
    [InlineData("1 minute", 60.0)]
    [InlineData("0", 0.0)]
    public void Retry_backoff_takes_seconds_or_a_hocon_duration(string backoff, double seconds)
    {
        var sweep = Parse($"sweep {{ name = r, model = synthetic, retry = {{ backoff = {backoff} }}, grid {{ batch-size = [8], base-lr = [0.01] }} }}");

        Assert.Equal(seconds, sweep.Retry.BackoffSeconds, 1e-12);
        Assert.Equal(3, sweep.Retry.MaxAttempts);
    }

    [Fact]
    public void Defaults_fill_everything_a_minimal_spec_leaves_out()
    {
        var sweep = Parse("sweep { name = minimal, cases = [ { name = a, batch-size = 64, base-lr = 0.01 } ] }");

        var trial = sweep.Trials.Single();
        Assert.Equal(TrialSpec.PaperCase1(new DatasetSpec(MnistData.EmbeddedPath)), trial.Spec);
        Assert.Equal(new DivergencePolicy(), sweep.Divergence);
        Assert.Equal(new RetryPolicy(), sweep.Retry);
        Assert.Equal(OutOfMemoryPolicy.Fail, sweep.OnOutOfMemory);
        Assert.Equal(ModelKind.Lenet, sweep.Model);
        Assert.Equal(new SyntheticSpec().IterationMs, sweep.Synthetic.IterationMs);
        Assert.Empty(sweep.Synthetic.FaultList);
    }

    [Fact]
    public void A_grid_over_the_trial_limit_is_refused_from_its_dimensions_at_once()
    {
        string thousand = string.Join(", ", Enumerable.Range(1, 1000));
        var text = $"sweep {{ name = huge, model = synthetic, grid {{ batch-size = [{thousand}], base-lr = [0.01], seed = [{thousand}] }} }}";

        var watch = Stopwatch.StartNew();
        var error = Assert.Throws<InvalidInputException>(() => Parse(text));

        Assert.Equal("spec.conf: sweep: expands to 1000000 trials, more than max-trials = 10000 (raise sweep.max-trials to allow it)", error.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    [Fact]
    public void Cases_count_towards_the_trial_limit_and_a_raised_limit_allows_the_sweep()
    {
        var text = "sweep { name = n, model = synthetic, max-trials = 3, cases = [ { name = a, batch-size = 8, base-lr = 0.1 } ], grid { batch-size = [8, 16, 32], base-lr = [0.01] } }";

        var error = Assert.Throws<InvalidInputException>(() => Parse(text));
        Assert.StartsWith("spec.conf: sweep: expands to 4 trials, more than max-trials = 3", error.Message);

        Assert.Equal(4, Parse(text, "sweep.max-trials=4").Trials.Count);
    }

    [Fact]
    public void A_million_cell_grid_expands_when_allowed()
    {
        string thousand = string.Join(", ", Enumerable.Range(1, 1000));
        var text = $"sweep {{ name = huge, model = synthetic, max-trials = 1000000, grid {{ batch-size = [{thousand}], base-lr = [0.01], seed = [{thousand}] }} }}";

        var watch = Stopwatch.StartNew();
        var sweep = Parse(text);

        Assert.Equal(1_000_000, sweep.Trials.Count);
        Assert.Equal("b1-lr0.01-s1", sweep.Trials[0].Name);
        Assert.Equal("b1000-lr0.01-s1000", sweep.Trials[^1].Name);
        Assert.Equal(1_000_000, sweep.Trials.Select(t => t.Id).ToHashSet().Count);
        // Generous: it takes a second or two; a quadratic merge would take hours.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), $"took {watch.Elapsed}");
    }
}
