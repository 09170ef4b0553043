using System.Globalization;
using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Tests.Specs;

/// <summary><c>random { … }</c>: reproducible draws from their distributions, the coupling from the drawn batch, and each mistake in one line.</summary>
public sealed class RandomSearchSpecTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("sweep-random-spec-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private SweepDefinition Load(string body, string model = "synthetic", params string[] overrides)
    {
        var path = Path.Combine(folder, "spec.conf");
        string command = model == "command" ? "command { arguments = [sh, -c, \"exit 0\"] }" : "";
        File.WriteAllText(path, $"sweep {{\n  name = s\n  model = {model}\n  {command}\n  scaling {{ reference-batch-size = 64, reference-lr = 0.01 }}\n  {body}\n}}\n");
        return SweepSpecLoader.Load(path, overrides, TextWriter.Null);
    }

    private string Refused(string body, string model = "synthetic") =>
        Assert.Throws<InvalidInputException>(() => Load(body, model)).Message.Replace(Path.Combine(folder, "spec.conf"), "spec.conf");

    [Fact]
    public void SplitMix64_gives_the_published_sequence()
    {
        // Vigna's splitmix64.c from seed 1234567 (also computed in Python while writing this test).
        var random = new SplitMix64(1234567);
        Assert.Equal([6457827717110365317UL, 3203168211198807973UL, 9817491932198370423UL, 4593380528125082431UL, 16408922859458223821UL],
            Enumerable.Range(0, 5).Select(_ => random.Next()));
    }

    [Fact]
    public void The_same_spec_draws_the_same_trials_and_another_seed_others()
    {
        const string body = "random { samples = 20, batch-size = [16, 32, 64, 128], base-lr { log-uniform = [0.001, 0.1] } }";
        var first = Load(body).Trials;
        var again = Load(body).Trials;
        var other = Load(body.Replace("samples = 20", "samples = 20, seed = 9", StringComparison.Ordinal)).Trials;

        Assert.Equal(20, first.Count);
        Assert.Equal(first, again);
        Assert.NotEqual(first.Select(t => t.Id), other.Select(t => t.Id));
        Assert.All(first, t =>
        {
            Assert.Contains(t.Spec.BatchSize, new[] { 16, 32, 64, 128 });
            Assert.InRange(t.Spec.BaseLr, 0.001, 0.1);
            // Four significant digits, as named.
            Assert.Equal(double.Parse(t.Spec.BaseLr.ToString("G4", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture), t.Spec.BaseLr);
            Assert.Matches(@"^r\d\d-b\d+-lr[0-9.E-]+$", t.Name);
            Assert.EndsWith($"-b{t.Spec.BatchSize}-lr{t.Spec.BaseLr.ToString(CultureInfo.InvariantCulture)}", t.Name);
        });
        // Log-uniform: about half the draws below the geometric middle 0.01 (20 draws: not 0 and not 20).
        Assert.InRange(first.Count(t => t.Spec.BaseLr < 0.01), 3, 17);
    }

    [Fact]
    public void A_drawn_exponent_gives_the_rate_through_the_coupling_from_the_drawn_batch()
    {
        var trials = Load("random { samples = 12, batch-size { int-log-uniform = [16, 256] }, lr-scaling { uniform = [-1, 1] } }").Trials;
        Assert.NotEmpty(trials);
        foreach (var t in trials)
        {
            Assert.InRange(t.Spec.BatchSize, 16, 256);
            double k = double.Parse(t.Name[(t.Name.IndexOf("-k", StringComparison.Ordinal) + 2)..], CultureInfo.InvariantCulture);
            Assert.InRange(k, -1, 1);
            Assert.Equal(0.01 * Math.Pow(t.Spec.BatchSize / 64.0, k), t.Spec.BaseLr, 15);
        }
    }

    [Fact]
    public void Cases_grid_and_draws_combine_and_named_parameters_are_drawn_typed()
    {
        var trials = Load("""
            cases = [ { name = ref, batch-size = 64, base-lr = 0.01, optimizer = sgd, dropout = 0.1, hidden = 128 } ]
            grid { batch-size = [32], base-lr = [0.02], optimizer = [adam], dropout = [0.2], hidden = [64] }
            random { samples = 8, batch-size = [32, 64], base-lr { uniform = [0.005, 0.05] }, dropout { uniform = [0, 0.5] }, hidden { int-uniform = [64, 256] }, optimizer = [sgd, adam] }
            """, model: "command").Trials;
        Assert.Equal(["ref", "b32-lr0.02"], trials.Take(2).Select(t => t.Name));
        Assert.Equal(10, trials.Count);
        foreach (var t in trials.Skip(2))
        {
            var p = t.Spec.Parameters!;
            Assert.InRange(p.Get("dropout")!.AsReal(), 0, 0.5);
            Assert.Equal(Sweep.Protocol.Training.ParameterKind.Real, p.Get("dropout")!.Kind);
            Assert.InRange(p.Get("hidden")!.AsInteger(), 64, 256);
            Assert.Contains(p.Get("optimizer")!.Text, new[] { "sgd", "adam" });
        }
    }

    [Theory]
    [InlineData("random { batch-size = [32], base-lr = [0.01] }", "spec.conf: sweep.random.samples: missing (how many trials to draw)")]
    [InlineData("search = random, samples = 4, grid { batch-size = [32], base-lr = [0.01] }", "spec.conf: sweep.search: unknown key (random search is a block of its own: random { samples = N, batch-size { log-uniform = [a, b] }, ... }, beside cases and grid)")]
    [InlineData("samples = 4, grid { batch-size = [32], base-lr = [0.01] }", "spec.conf: sweep.samples: unknown key (random search is a block of its own: random { samples = N, batch-size { log-uniform = [a, b] }, ... }, beside cases and grid)")]
    [InlineData("random { samples = 0, batch-size = [32], base-lr = [0.01] }", "spec.conf: sweep.random.samples: must be at least 1, got 0")]
    [InlineData("random { samples = 2, base-lr = [0.01] }", "spec.conf: sweep.random.batch-size: missing (a distribution, or a list to choose from)")]
    [InlineData("random { samples = 2, batch-size = [32] }", "spec.conf: sweep.random: needs base-lr { ... } (learning rates) or lr-scaling { ... } (exponents k, with sweep.scaling)")]
    [InlineData("random { samples = 2, batch-size { uniform = [16, 64] }, base-lr = [0.01] }", "spec.conf: sweep.random.batch-size.uniform: draws reals: a batch size is a whole number (use int-uniform, int-log-uniform or choice)")]
    [InlineData("random { samples = 2, batch-size = [32], base-lr { log-uniform = [0, 0.1] } }", "spec.conf: sweep.random.base-lr.log-uniform[0]: must be positive, got 0")]
    [InlineData("random { samples = 2, batch-size = [32], base-lr { uniform = [0.1, 0.01] } }", "spec.conf: sweep.random.base-lr.uniform: the high end 0.01 must be above the low end 0.1")]
    [InlineData("random { samples = 2, batch-size = [32], base-lr { uniform = [0.1] } }", "spec.conf: sweep.random.base-lr.uniform: expected [low, high]")]
    [InlineData("random { samples = 2, batch-size = [32], base-lr { uniform = [0.01, 0.1], choice = [0.01] } }", "spec.conf: sweep.random.base-lr: give exactly one of choice, uniform, log-uniform, int-uniform, int-log-uniform")]
    [InlineData("random { samples = 2, batch-size = [32], base-lr { normal = [0.01, 0.1] } }", "spec.conf: sweep.random.base-lr.normal: unknown key")]
    [InlineData("random { samples = 2, batch-size = [32], base-lr = [0.01], lr-scaling = [1] }", "spec.conf: sweep.random.lr-scaling: cannot be combined with sweep.random.base-lr: give one of them")]
    [InlineData("random { samples = 2, batch-size { int-uniform = [64, 16] }, base-lr = [0.01] }", "spec.conf: sweep.random.batch-size.int-uniform: the high end 16 is below the low end 64")]
    [InlineData("random { samples = 2, batch-size = [32], base-lr = [0.01], dropout { uniform = [0, 1] } }", "spec.conf: sweep.random.dropout: unknown key (this model's trials take no other parameters: named parameters are for model = command and model = plugin)")]
    [InlineData("random { samples = 2, batch-size = [32], base-lr = [0.01], batch_size = [1] }", "spec.conf: sweep.random.batch_size: unknown key (did you mean batch-size?)")]
    [InlineData("random { samples = 20000, batch-size = [32], base-lr = [0.01] }", "spec.conf: sweep: expands to 20000 trials, more than max-trials = 10000 (raise sweep.max-trials to allow it)")]
    public void A_bad_random_search_is_one_line_naming_its_key(string body, string message)
    {
        Assert.StartsWith(message, Refused(body));
    }
}
