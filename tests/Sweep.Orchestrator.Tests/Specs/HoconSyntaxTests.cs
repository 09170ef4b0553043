using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Tests.Specs;

/// <summary>
/// Specs accept what the HOCON specification accepts (https://github.com/lightbend/config/blob/main/HOCON.md):
/// the separators of its "Commas" section, one-line objects, braces around the whole file, and
/// <c>include</c>; each form is written to a file and read by <see cref="SweepSpecLoader.Load"/>.
/// </summary>
public sealed class HoconSyntaxTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-hocon-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    /// <summary>The sweep every form below writes differently.</summary>
    private const string Canonical = """
        sweep {
          name = forms
          model = synthetic
          max-iter = 20
          retry {
            max-attempts = 2
          }
          grid {
            batch-size = [16, 32]
            base-lr = [0.01, 0.02]
          }
          synthetic {
            faults = [
              { trial = b16-lr0.01, at-iteration = 5, kind = exception }
            ]
          }
        }
        """;

    private string Write(string text, string name = "spec.conf", string? folder = null)
    {
        var directory = folder is null ? temp : Directory.CreateDirectory(Path.Combine(temp, folder)).FullName;
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    private SweepDefinition Load(string text, params string[] overrides) => SweepSpecLoader.Load(Write(text), overrides);

    /// <summary>Everything a spec decides, in one comparable line (trial ids cover every setting of a trial).</summary>
    private static string Summary(SweepDefinition sweep) => string.Join(" | ",
        sweep.Name, sweep.Model, sweep.Retry, sweep.Divergence, sweep.OnOutOfMemory, sweep.Synthetic.IterationMs,
        string.Join(", ", sweep.Trials.Select(t => $"{t.Name}={t.Id}")),
        string.Join(", ", sweep.Synthetic.FaultList.Select(f => $"{f.Trial}@{f.AtIteration}:{f.Kind}:{string.Join('/', f.Attempts)}")));

    public static TheoryData<string, string> Forms => new()
    {
        // label, the canonical sweep written another way
        { "the reported one-liner: commas after key { } blocks", "sweep { name = forms, model = synthetic, max-iter = 20, retry { max-attempts = 2 }, grid { batch-size = [16, 32], base-lr = [0.01, 0.02] }, synthetic { faults = [ { trial = b16-lr0.01, at-iteration = 5, kind = exception } ] } }" },
        { "the reported one-liner with a trailing comma in every object and list", "sweep { name = forms, model = synthetic, max-iter = 20, retry { max-attempts = 2, }, grid { batch-size = [16, 32,], base-lr = [0.01, 0.02,], }, synthetic { faults = [ { trial = b16-lr0.01, at-iteration = 5, kind = exception, }, ], }, }" },
        { "objects separated by a comma and a newline", "sweep {\n  name = forms, model = synthetic, max-iter = 20,\n  retry { max-attempts = 2 },\n  grid { batch-size = [16, 32], base-lr = [0.01, 0.02] },\n  synthetic { faults = [ { trial = b16-lr0.01, at-iteration = 5, kind = exception } ] },\n}\n" },
        { "a comma after a space and after a comment", "sweep {\n  name = forms , model = synthetic\n  max-iter = 20 # twenty\n  , retry { max-attempts = 2 } ,\n  grid { batch-size = [16 , 32] , base-lr = [0.01 ,0.02] }\n  synthetic { faults = [ { trial = b16-lr0.01, at-iteration = 5, kind = exception } ] }\n}\n" },
        { "commas at the start of the next line", "sweep {\n  name = forms\n  , model = synthetic\n  , max-iter = 20\n  , retry { max-attempts = 2 }\n  , grid { batch-size = [16\n    , 32], base-lr = [0.01\n    , 0.02] }\n  , synthetic { faults = [ { trial = b16-lr0.01, at-iteration = 5, kind = exception }\n  ] }\n}\n" },
        { "list elements on lines of their own, no commas", "sweep {\n  name = forms\n  model = synthetic\n  max-iter = 20\n  retry { max-attempts = 2 }\n  grid {\n    batch-size = [\n      16\n      32\n    ]\n    base-lr = [\n      0.01\n      0.02\n    ]\n  }\n  synthetic { faults = [\n    { trial = b16-lr0.01, at-iteration = 5, kind = exception }\n  ] }\n}\n" },
        { "objects assigned with '=' and ':' then a comma", "sweep = { name: forms, model: synthetic, max-iter: 20, retry = { max-attempts = 2 }, grid: { batch-size: [16, 32], base-lr: [0.01, 0.02] }, synthetic = { faults = [ { trial: b16-lr0.01, at-iteration: 5, kind: exception } ] } }" },
        { "path keys, one line", "sweep.name = forms, sweep.model = synthetic, sweep.max-iter = 20, sweep.retry.max-attempts = 2, sweep.grid { batch-size = [16, 32] }, sweep.grid.base-lr = [0.01, 0.02], sweep.synthetic.faults = [ { trial = b16-lr0.01, at-iteration = 5, kind = exception } ]" },
        { "JSON", """{ "sweep": { "name": "forms", "model": "synthetic", "max-iter": 20, "retry": { "max-attempts": 2 }, "grid": { "batch-size": [16, 32], "base-lr": [0.01, 0.02] }, "synthetic": { "faults": [ { "trial": "b16-lr0.01", "at-iteration": 5, "kind": "exception" } ] } } }""" },
        { "braces around the whole file, on lines of their own", "# the root object in braces\n{\n" + Canonical + "\n}\n// end\n" },
        { "a key's '{' on the next line", "sweep\n{\n  name = forms, model = synthetic, max-iter = 20\n  retry\n  { max-attempts = 2 }\n  grid { batch-size = [16, 32], base-lr = [0.01, 0.02] }\n  synthetic { faults = [ { trial = b16-lr0.01, at-iteration = 5, kind = exception } ] }\n}\n" },
        { "CRLF line ends and tabs", Canonical.Replace("\n", "\r\n").Replace("  ", "\t") },
        { "the same object given twice is merged", "sweep { name = forms, model = synthetic, max-iter = 20, retry { max-attempts = 2 } }, sweep { grid { batch-size = [16, 32] } }, sweep { grid { base-lr = [0.01, 0.02] }, synthetic { faults = [ { trial = b16-lr0.01, at-iteration = 5, kind = exception } ] } }" },
    };

    [Theory]
    [MemberData(nameof(Forms))]
    public void Every_form_the_hocon_specification_accepts_gives_the_same_sweep(string label, string text)
    {
        var expected = Summary(Load(Canonical));

        var sweep = Load(text);

        Assert.True(expected == Summary(sweep), $"{label}:\nexpected {expected}\ngot      {Summary(sweep)}");
    }

    [Fact]
    public void The_canonical_form_is_what_the_forms_are_compared_with()
    {
        var sweep = Load(Canonical);

        Assert.Equal(["b16-lr0.01", "b16-lr0.02", "b32-lr0.01", "b32-lr0.02"], sweep.Trials.Select(t => t.Name));
        Assert.All(sweep.Trials, t => Assert.Equal(20, t.Spec.MaxIter));
        Assert.Equal(2, sweep.Retry.MaxAttempts);
        Assert.Equal("b16-lr0.01", Assert.Single(sweep.Synthetic.FaultList).Trial);
    }

    [Fact]
    public void Set_flags_apply_to_a_spec_in_braces_and_to_a_one_line_spec()
    {
        // Akka's parser dropped everything after the root's closing brace: the flags appended to the spec.
        var braced = Load("{ sweep { name = b, model = synthetic, grid { batch-size = [16], base-lr = [0.01] } } }", "sweep.max-iter=7", "sweep.grid.batch-size=[8, 16]");
        var oneLine = Load("sweep { name = b, model = synthetic, grid { batch-size = [16], base-lr = [0.01] }, max-iter = 20 }", "sweep.max-iter=7");

        Assert.Equal([8, 16], braced.Trials.Select(t => t.Spec.BatchSize));
        Assert.All(braced.Trials, t => Assert.Equal(7, t.Spec.MaxIter));
        Assert.Equal(7, Assert.Single(oneLine.Trials).Spec.MaxIter);
    }

    [Fact]
    public void A_spec_includes_a_file_relative_to_itself_and_later_keys_win()
    {
        Write("sweep { model = synthetic, max-iter = 30, grid { batch-size = [16, 32] } }", "common.conf", "specs");
        Write("grid { base-lr = [0.01, 0.02] }", "rates.conf", Path.Combine("specs", "parts"));
        var path = Write("""
            include "common.conf"
            sweep {
              name = included
              include required("parts/rates.conf"),
              max-iter = 40
            }
            """, "main.conf", "specs");

        // From another working directory: includes are relative to the including file, never to the process.
        var sweep = SweepSpecLoader.Load(path, []);

        Assert.Equal(ModelKind.Synthetic, sweep.Model);
        Assert.Equal(["b16-lr0.01", "b16-lr0.02", "b32-lr0.01", "b32-lr0.02"], sweep.Trials.Select(t => t.Name));
        Assert.All(sweep.Trials, t => Assert.Equal(40, t.Spec.MaxIter));
    }

    [Fact]
    public void Includes_inside_included_files_are_relative_to_those_files()
    {
        Write("include file(\"deeper/grid.conf\")\nmax-iter = 25", "sweep.conf", "parts");
        Write("grid { batch-size = [8], base-lr = [0.05] }", "grid.conf", Path.Combine("parts", "deeper"));
        Write("grid { batch-size = [999], base-lr = [0.05] }", "grid.conf", "deeper"); // the wrong one, relative to the main spec

        var sweep = Load("sweep { name = nested, model = synthetic\n  include \"parts/sweep.conf\" }");

        var trial = Assert.Single(sweep.Trials);
        Assert.Equal((8, 25), (trial.Spec.BatchSize, trial.Spec.MaxIter));
    }

    [Fact]
    public void An_include_without_extension_finds_the_conf_file()
    {
        Write("sweep { grid { batch-size = [8], base-lr = [0.05] } }", "grid.conf");

        var sweep = Load("include \"grid\", sweep { name = e, model = synthetic }");

        Assert.Equal("b8-lr0.05", Assert.Single(sweep.Trials).Name);
    }

    [Fact]
    public void Include_problems_are_one_line_naming_the_spec_the_include_and_the_included_file()
    {
        Write("sweep { grid { batch-size = [16,, 32] } }", "broken.conf");
        Write("include \"loop-b.conf\"", "loop-a.conf");
        Write("include \"loop-a.conf\"", "loop-b.conf");
        var spec = Path.Combine(temp, "spec.conf");
        string Refused(string text, params string[] overrides)
        {
            var error = Assert.Throws<InvalidInputException>(() => Load(text, overrides));
            Assert.DoesNotContain('\n', error.Message);
            return error.Message;
        }

        Assert.Equal($"{spec}: include \"missing.conf\": file not found: {Path.Combine(temp, "missing.conf")}", Refused("include \"missing.conf\"\nsweep { name = x }"));
        Assert.Equal($"{spec}: include \"broken.conf\": {Path.Combine(temp, "broken.conf")}: line 1, column 33: ',' with no value before it", Refused("include \"broken.conf\""));
        Assert.StartsWith($"{spec}: include \"loop-b.conf\": {Path.Combine(temp, "loop-b.conf")}: include \"loop-a.conf\": {Path.Combine(temp, "loop-a.conf")}: include \"loop-b.conf\": an include cycle (spec.conf -> loop-b.conf -> loop-a.conf -> loop-b.conf)", Refused("include \"loop-b.conf\""));
        Assert.StartsWith($"{spec}: line 1, column 9: include url(...) is not supported", Refused("include url(\"http://example.com/x.conf\")"));
        Assert.StartsWith($"{spec}: line 1, column 9: include needs one quoted file name", Refused("include other.conf"));
        Assert.StartsWith("--set sweep.grid={ include \"broken.conf\" }: include \"broken.conf\": includes are not supported in --set values", Refused("sweep { name = x }", "sweep.grid={ include \"broken.conf\" }"));
    }
}
