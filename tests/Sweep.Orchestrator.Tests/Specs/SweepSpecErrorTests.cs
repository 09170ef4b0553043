using Sweep.Orchestrator.Specs;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Tests.Specs;

/// <summary>
/// Bad specs and bad flags: each is one <see cref="InvalidInputException"/> whose single line names the
/// file (or the flag), the key and what is wrong, as `sweep` prints it before exiting with code 2.
/// </summary>
public sealed class SweepSpecErrorTests
{
    /// <summary>A valid grid to add to specs whose point is elsewhere.</summary>
    private const string Grid = "grid = { batch-size = [32, 64], base-lr = [0.01, 0.02] }";

    private static InvalidInputException Refused(string spec, params string[] overrides)
    {
        var error = Assert.Throws<InvalidInputException>(() => SweepSpecLoader.Parse(spec, "spec.conf", Path.GetTempPath(), overrides));
        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain('\r', error.Message);
        return error;
    }

    /// <summary>The body of a synthetic sweep (no dataset needed) with <paramref name="lines"/> added.</summary>
    private static string Synthetic(params string[] lines) => $"sweep {{\n  name = bad\n  model = synthetic\n  {string.Join("\n  ", lines)}\n}}\n";

    public static TheoryData<string, string, string> BadSpecs => new()
    {
        // label, spec text, the start of the message
        { "unparseable HOCON", Synthetic(Grid, "cases = [ { name = a, batch-size = 8, base-lr = 0.1 }"), "spec.conf: line 6, column 1: '}' where ']' was expected to close the '[' at line 5, column 11" },
        { "unclosed object", "sweep { name = x", "spec.conf: line 1, column 7: '{' is never closed" },
        { "closing nothing", Synthetic(Grid) + "}", "spec.conf: line 6, column 1: '}' closes nothing" },
        { "number out of range", Synthetic(Grid, "max-iter = 3000000000"), "spec.conf: sweep.max-iter: expected a whole number up to 2147483647, got 3000000000" },
        { "mismatched bracket", Synthetic("grid { batch-size = [16, 32 }"), "spec.conf: line 4, column 31: '}' where ']' was expected" },
        { "stray character in a list", Synthetic("grid { batch-size = [16, = 32] }"), "spec.conf: line 4, column 28: unexpected '=' inside the list" },
        { "two commas between fields", Synthetic("name = x, , seed = 1", Grid), "spec.conf: line 4, column 13: ',' with no field before it" },
        // The "Commas" section of the HOCON specification: these are invalid, in lists and objects alike.
        { "two trailing commas in a list", Synthetic("grid { batch-size = [1,2,3,,], base-lr = [0.01] }"), "spec.conf: line 4, column 30: ',' with no value before it" },
        { "an initial comma in a list", Synthetic("grid { batch-size = [,1,2,3], base-lr = [0.01] }"), "spec.conf: line 4, column 24: ',' with no value before it" },
        { "two commas in a row in a list", Synthetic("grid { batch-size = [1,,2,3], base-lr = [0.01] }"), "spec.conf: line 4, column 26: ',' with no value before it" },
        { "two commas on two lines in a list", Synthetic("grid { batch-size = [1,\n,2], base-lr = [0.01] }"), "spec.conf: line 5, column 1: ',' with no value before it" },
        { "two trailing commas in an object", Synthetic("grid { batch-size = [1], base-lr = [0.01],, }"), "spec.conf: line 4, column 45: ',' with no field before it" },
        { "an initial comma in an object", Synthetic("grid { , batch-size = [1], base-lr = [0.01] }"), "spec.conf: line 4, column 10: ',' with no field before it" },
        { "two fields on one line without a comma", Synthetic("max-iter = 10 seed = 2", Grid), "spec.conf: line 4, column 22: unexpected '=' in the value of max-iter (fields on one line need a ',' between them" },
        { "a key without a value", Synthetic("max-iter", Grid), "spec.conf: line 5, column 3: the key max-iter has no value" },
        { "a key without a value before a comma", Synthetic("grid { batch-size = [8], base-lr, seed = 1 }"), "spec.conf: line 4, column 35: the key base-lr has no value" },
        { "a list without '='", Synthetic("grid { batch-size [8], base-lr = [0.1] }"), "spec.conf: line 4, column 21: the list after the key batch-size needs '=' or ':' before it" },
        { "an object without a key", Synthetic("grid { { batch-size = [8] } }"), "spec.conf: line 4, column 10: '{' where a key was expected" },
        { "text after the root braces", "{ sweep { name = x } }\nsweep.seed = 2", "spec.conf: line 2, column 1: text after the '}' at line 1, column 22 that closes the whole spec" },
        { "a list at the root", "[ { sweep = 1 } ]", "spec.conf: line 1, column 1: a spec is an object" },
        { "append", Synthetic("grid { batch-size = [8], base-lr += 0.1 }"), "spec.conf: line 4, column 36: '+=' is not supported in sweep specs" },
        { "optional substitution", Synthetic(Grid, "max-iter = ${?MAX_ITER}"), "spec.conf: line 5, column 14: optional substitutions ${?...} are not supported" },
        { "unterminated string", Synthetic("name = \"bad", Grid), "spec.conf: line 4, column 10: unterminated string" },
        { "include of a missing file", "include \"no-such-file-for-sweep-specs.conf\"\n" + Synthetic(Grid), $"spec.conf: include \"no-such-file-for-sweep-specs.conf\": file not found: {Path.Combine(Path.GetTempPath(), "no-such-file-for-sweep-specs.conf")}" },
        { "empty file", "", "spec.conf: sweep: missing (a spec is one root object named sweep" },
        { "no sweep root", "experiment { name = x }", "spec.conf: experiment: unknown key (a spec holds one root object, sweep)" },
        { "second root key", Synthetic(Grid) + "akka { loglevel = DEBUG }", "spec.conf: akka: unknown key" },
        { "sweep not an object", "sweep = [1, 2]", "spec.conf: sweep: expected an object, got a list" },
        { "unknown key", Synthetic(Grid, "max-iters = 10"), "spec.conf: sweep.max-iters: unknown key (did you mean max-iter?)" },
        { "unknown nested key", Synthetic(Grid, "solver { gama = 0.001 }"), "spec.conf: sweep.solver.gama: unknown key (did you mean gamma?)" },
        { "unknown key in a case", Synthetic("cases = [ { name = a, batch-size = 8, base-lr = 0.1, lr = 2 } ]"), "spec.conf: sweep.cases[0].lr: unknown key" },
        { "missing name", "sweep { model = synthetic\n" + Grid + " }", "spec.conf: sweep.name: missing (required)" },
        { "empty name", "sweep { name = \"\", model = synthetic\n" + Grid + " }", "spec.conf: sweep.name: must not be empty" },
        { "text for a number", Synthetic("grid { batch-size = \"big\", base-lr = [0.01] }"), "spec.conf: sweep.grid.batch-size: expected a whole number, got \"big\"" },
        { "text in a list of numbers", Synthetic("grid { batch-size = [16, big], base-lr = [0.01] }"), "spec.conf: sweep.grid.batch-size[1]: expected a whole number, got \"big\"" },
        { "fraction for a whole number", Synthetic("grid { batch-size = [16.5], base-lr = [0.01] }"), "spec.conf: sweep.grid.batch-size[0]: expected a whole number, got 16.5" },
        { "number for a list of cases", Synthetic("cases = 3"), "spec.conf: sweep.cases: expected a list, got 3" },
        { "object for a number", Synthetic(Grid, "max-iter { value = 10 }"), "spec.conf: sweep.max-iter: expected a whole number, got an object" },
        { "number for an object", Synthetic(Grid, "solver = 0.9"), "spec.conf: sweep.solver: expected an object, got 0.9" },
        { "non-positive batch", Synthetic("cases = [ { name = a, batch-size = 0, base-lr = 0.1 } ]"), "spec.conf: sweep.cases[0].batch-size: must be positive, got 0" },
        { "negative lr", Synthetic("cases = [ { name = a, batch-size = 8, base-lr = -0.01 } ]"), "spec.conf: sweep.cases[0].base-lr: must be positive, got -0.01" },
        { "missing lr in a case", Synthetic("cases = [ { name = a, batch-size = 8 } ]"), "spec.conf: sweep.cases[0].base-lr: missing (required)" },
        { "zero max-iter", Synthetic(Grid, "max-iter = 0"), "spec.conf: sweep.max-iter: must be positive, got 0" },
        { "zero test-interval", Synthetic(Grid, "test-interval = 0"), "spec.conf: sweep.test-interval: must be positive, got 0" },
        { "negative seed in a grid", Synthetic("grid { batch-size = [8], base-lr = [0.1], seed = [1, -2] }"), "spec.conf: sweep.grid.seed[1]: must be zero or positive, got -2" },
        { "empty sweep", Synthetic(), "spec.conf: sweep: no trials" },
        { "empty cases and grid", Synthetic("cases = []", "grid {}"), "spec.conf: sweep: no trials" },
        { "empty grid list", Synthetic("grid { batch-size = [8], base-lr = [] }"), "spec.conf: sweep.grid.base-lr: must list at least one value" },
        { "grid without batch sizes", Synthetic("grid { base-lr = [0.01] }"), "spec.conf: sweep.grid.batch-size: missing (required)" },
        { "grid without rates", Synthetic("grid { batch-size = [8] }"), "spec.conf: sweep.grid: needs base-lr" },
        { "missing dataset folder", "sweep { name = x, model = lenet, dataset = { path = /no/such/mnist }\n" + Grid + " }", "spec.conf: sweep.dataset.path: folder not found: /no/such/mnist" },
        { "unknown model", Synthetic(Grid, "model = resnet"), "spec.conf: sweep.model: expected one of lenet, synthetic, command, plugin, got \"resnet\"" },
        { "unknown lr-policy", Synthetic(Grid, "solver { lr-policy = exp }"), "spec.conf: sweep.solver.lr-policy: expected one of inv, fixed, step, got \"exp\"" },
        { "momentum 1.5", Synthetic(Grid, "solver { momentum = 1.5 }"), "spec.conf: sweep.solver.momentum: must be in [0, 1), got 1.5" },
        { "negative gamma", Synthetic(Grid, "solver { gamma = -0.1 }"), "spec.conf: sweep.solver.gamma: must be zero or positive, got -0.1" },
        { "duplicate case names", Synthetic("cases = [ { name = a, batch-size = 8, base-lr = 0.1 }, { name = a, batch-size = 16, base-lr = 0.1 } ]"), "spec.conf: sweep.cases[1].name: duplicate case name \"a\" (first used by sweep.cases[0])" },
        { "base-lr and lr-scaling", Synthetic("scaling { reference-batch-size = 64, reference-lr = 0.01 }", "grid { batch-size = [8], base-lr = [0.1], lr-scaling = [1] }"), "spec.conf: sweep.grid.lr-scaling: cannot be combined with sweep.grid.base-lr" },
        { "lr-scaling without scaling", Synthetic("grid { batch-size = [8], lr-scaling = [1] }"), "spec.conf: sweep.grid.lr-scaling: needs sweep.scaling { reference-batch-size, reference-lr }" },
        { "lr-scaling without reference lr", Synthetic("scaling { reference-batch-size = 64 }", "grid { batch-size = [8], lr-scaling = [1] }"), "spec.conf: sweep.scaling.reference-lr: missing (required when sweep.grid.lr-scaling is used)" },
        { "coupled rate overflows", Synthetic("scaling { reference-batch-size = 1, reference-lr = 0.01 }", "grid { batch-size = [1000], lr-scaling = [1000] }"), "spec.conf: sweep.grid: trial b1000-k1000: base-lr must be positive" },
        { "fault on an unknown trial", Synthetic(Grid, "synthetic { faults = [ { trial = CASE10, at-iteration = 5, kind = crash } ] }"), "spec.conf: sweep.synthetic.faults[0].trial: no trial named \"CASE10\"" },
        { "unknown fault kind", Synthetic(Grid, "synthetic { faults = [ { trial = b32-lr0.01, at-iteration = 5, kind = meltdown } ] }"), "spec.conf: sweep.synthetic.faults[0].kind: expected one of exception, nan, crash, out-of-memory, got \"meltdown\"" },
        { "negative fault iteration", Synthetic(Grid, "synthetic { faults = [ { trial = b32-lr0.01, at-iteration = -1, kind = nan } ] }"), "spec.conf: sweep.synthetic.faults[0].at-iteration: must be zero or positive, got -1" },
        { "zero fault attempt", Synthetic(Grid, "synthetic { faults = [ { trial = b32-lr0.01, at-iteration = 1, kind = nan, attempts = [0] } ] }"), "spec.conf: sweep.synthetic.faults[0].attempts[0]: must be positive, got 0" },
        { "bad on-out-of-memory", Synthetic(Grid, "on-out-of-memory = retry"), "spec.conf: sweep.on-out-of-memory: expected one of fail, halve-batch, got \"retry\"" },
        { "retry max-attempts 0", Synthetic(Grid, "retry { max-attempts = 0 }"), "spec.conf: sweep.retry.max-attempts: must be at least 1, got 0" },
        { "bad backoff", Synthetic(Grid, "retry { backoff = soon }"), "spec.conf: sweep.retry.backoff: expected a duration" },
        { "negative backoff", Synthetic(Grid, "retry { backoff = -2s }"), "spec.conf: sweep.retry.backoff: must be zero or positive, got -2" },
        { "chance accuracy 1.5", Synthetic(Grid, "divergence { chance-accuracy = 1.5 }"), "spec.conf: sweep.divergence.chance-accuracy: must be in (0, 1), got 1.5" },
        { "loss factor 1", Synthetic(Grid, "divergence { loss-factor = 1 }"), "spec.conf: sweep.divergence.loss-factor: must be greater than 1, got 1" },
        { "zero max-trials", Synthetic(Grid, "max-trials = 0"), "spec.conf: sweep.max-trials: must be positive, got 0" },
        { "self-referencing substitution", Synthetic(Grid, "max-iter = ${sweep.max-iter}"), "spec.conf: sweep.max-iter: the substitution ${sweep.max-iter} refers to itself" },
        { "unresolved substitution", Synthetic(Grid, "max-iter = ${sweep.nothing}"), "spec.conf: Unresolved substitution" },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public void A_bad_spec_is_refused_with_one_line_naming_the_file_and_key(string label, string spec, string message)
    {
        var error = Refused(spec);

        Assert.True(error.Message.StartsWith(message, StringComparison.Ordinal), $"{label}: expected '{message}…', got '{error.Message}'");
    }

    public static TheoryData<string, string[], string> BadOverrides => new()
    {
        { "no '='", ["sweep.max-iter"], "--set sweep.max-iter: expected KEY=VALUE" },
        { "empty key", ["=300"], "--set =300: the key before '=' is empty" },
        { "not a key path", ["sweep max-iter=300"], "--set sweep max-iter=300: 'sweep max-iter' is not a key path" },
        { "unknown key", ["sweep.foo=1"], "--set sweep.foo=1: sweep.foo: unknown key" },
        { "a typo", ["sweep.max-iters=10"], "--set sweep.max-iters=10: sweep.max-iters: unknown key (did you mean sweep.max-iter?)" },
        { "a typo in a nested key", ["sweep.solver.gama=0.1"], "--set sweep.solver.gama=0.1: sweep.solver.gama: unknown key (did you mean sweep.solver.gamma?)" },
        { "a typo in the root", ["swep.max-iter=10"], "--set swep.max-iter=10: swep.max-iter: unknown key (did you mean sweep.max-iter?)" },
        { "a typo in an object's name", ["sweep.solvr.gamma=0.1"], "--set sweep.solvr.gamma=0.1: sweep.solvr.gamma: unknown key (did you mean sweep.solver.gamma?)" },
        { "a typo in the object and the key", ["sweep.solvr.gama=0.1"], "--set sweep.solvr.gama=0.1: sweep.solvr.gama: unknown key (did you mean sweep.solver.gamma?)" },
        { "a typo in an object before an unknown key", ["sweep.solvr.foo=0.1"], "--set sweep.solvr.foo=0.1: sweep.solvr.foo: unknown key (did you mean sweep.solver?)" },
        { "no key close enough", ["sweep.learning-rate=0.1"], "--set sweep.learning-rate=0.1: sweep.learning-rate: unknown key" },
        { "key inside a list", ["sweep.cases.name=x"], "--set sweep.cases.name=x: sweep.cases.name: unknown key (sweep.cases holds a value, not keys: set it whole, --set sweep.cases=VALUE)" },
        { "empty value", ["sweep.name="], "--set sweep.name=: sweep.name: the value after '=' is empty" },
        { "syntax error", ["sweep.grid.batch-size=[16, 32"], "--set sweep.grid.batch-size=[16, 32: line 1, column 25: '[' is never closed" },
        { "a second key smuggled in", ["sweep.max-iter=3\nsweep.foo=1"], "--set sweep.max-iter=3 sweep.foo=1: sweep.max-iter: the value must be a single HOCON value" },
        { "wrong type", ["sweep.max-iter=abc"], "--set sweep.max-iter=abc: sweep.max-iter: expected a whole number, got \"abc\"" },
        { "bad value in an object", ["sweep.solver={ momentum = 2 }"], "--set sweep.solver={ momentum = 2 }: sweep.solver.momentum: must be in [0, 1), got 2" },
        { "bad list element", ["sweep.grid.batch-size=[16, -32]"], "--set sweep.grid.batch-size=[16, -32]: sweep.grid.batch-size[1]: must be positive, got -32" },
        { "the later flag is blamed", ["sweep.max-iter=10", "sweep.max-iter=-1"], "--set sweep.max-iter=-1: sweep.max-iter: must be positive, got -1" },
        { "unknown enum", ["sweep.on-out-of-memory=ignore"], "--set sweep.on-out-of-memory=ignore: sweep.on-out-of-memory: expected one of fail, halve-batch" },
        { "substitution", ["sweep.seed=${sweep.max-iter}"], "--set sweep.seed=${sweep.max-iter}: sweep.seed: substitutions are not supported" },
    };

    [Theory]
    [MemberData(nameof(BadOverrides))]
    public void A_bad_set_flag_is_refused_naming_the_flag(string label, string[] overrides, string message)
    {
        var error = Refused(Synthetic(Grid), overrides);

        Assert.True(error.Message.StartsWith(message, StringComparison.Ordinal), $"{label}: expected '{message}…', got '{error.Message}'");
    }

    [Theory]
    [InlineData("max-iters = 10", "sweep.max-iters=10", "max-iter", "sweep.max-iter")]
    [InlineData("solver { gama = 0.001 }", "sweep.solver.gama=0.001", "gamma", "sweep.solver.gamma")]
    [InlineData("retry { max-atempts = 2 }", "sweep.retry.max-atempts=2", "max-attempts", "sweep.retry.max-attempts")]
    public void A_typo_gets_the_same_suggestion_in_the_spec_and_in_a_set_flag_and_the_suggested_flag_works(string inSpec, string flag, string key, string keyPath)
    {
        var fromSpec = Refused(Synthetic(Grid, inSpec));
        var fromFlag = Refused(Synthetic(Grid), flag);

        Assert.EndsWith($": unknown key (did you mean {key}?)", fromSpec.Message);
        Assert.EndsWith($": unknown key (did you mean {keyPath}?)", fromFlag.Message);
        var corrected = keyPath + flag[flag.IndexOf('=')..];
        Assert.NotNull(SweepSpecLoader.Parse(Synthetic(Grid), "spec.conf", Path.GetTempPath(), [corrected]));
    }

    [Theory]
    [InlineData("1e-3", "expected a whole number, got 1e-3")]
    [InlineData("2.55E1", "expected a whole number, got 2.55E1")]
    [InlineData("16.5", "expected a whole number, got 16.5")]
    [InlineData("1e10", "expected a whole number up to 2147483647, got 1e10")]
    [InlineData("1e400", "expected a whole number up to 2147483647, got 1e400")]
    public void A_number_that_is_not_a_whole_int_is_refused_with_the_same_words_in_the_spec_and_in_a_set_flag(string written, string problem)
    {
        var fromSpec = Refused(Synthetic(Grid, $"max-iter = {written}"));
        var fromFlag = Refused(Synthetic(Grid), $"sweep.max-iter={written}");

        Assert.Equal($"spec.conf: sweep.max-iter: {problem}", fromSpec.Message);
        Assert.Equal($"--set sweep.max-iter={written}: sweep.max-iter: {problem}", fromFlag.Message);
    }

    [Fact]
    public void A_file_error_under_an_overridden_object_still_names_the_file()
    {
        var error = Refused(Synthetic(Grid, "solver { gama = 0.1 }"), "sweep.solver={ momentum = 0.5 }");

        Assert.StartsWith("spec.conf: sweep.solver.gama: unknown key", error.Message);
    }

    [Fact]
    public void A_missing_spec_file_is_named()
    {
        var path = Path.Combine(Path.GetTempPath(), "no-such-folder-for-sweep", "missing.conf");

        var error = Assert.Throws<InvalidInputException>(() => SweepSpecLoader.Load(path, []));

        Assert.Equal($"{path}: spec file not found", error.Message);
    }

    [Fact]
    public void Errors_in_a_real_file_name_its_path()
    {
        var folder = Directory.CreateTempSubdirectory("sweep-spec-errors-").FullName;
        try
        {
            var path = Path.Combine(folder, "typo.conf");
            File.WriteAllText(path, Synthetic(Grid, "solver { gama = 0.1 }"));

            var error = Assert.Throws<InvalidInputException>(() => SweepSpecLoader.Load(path, []));

            Assert.Equal($"{path}: sweep.solver.gama: unknown key (did you mean gamma?)", error.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
