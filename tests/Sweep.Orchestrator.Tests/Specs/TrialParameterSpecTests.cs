using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Specs;

/// <summary>
/// Named parameters (issue 15, item 1): any case field or grid axis beyond the well-known ones, for
/// the models that take them, typed by how it reads, with one type per name; and every mistake one line.
/// </summary>
public sealed class TrialParameterSpecTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("sweep-parameter-spec-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private SweepDefinition Load(string body, string model = "command", params string[] overrides)
    {
        var path = Path.Combine(folder, "spec.conf");
        string command = model == "command" ? "command { arguments = [sh, -c, \"exit 0\"] }" : "";
        File.WriteAllText(path, $"sweep {{\n  name = mine\n  model = {model}\n  {command}\n  {body}\n}}\n");
        return SweepSpecLoader.Load(path, overrides, TextWriter.Null);
    }

    private string Refused(string body, string model = "command", params string[] overrides) =>
        Assert.Throws<InvalidInputException>(() => Load(body, model, overrides)).Message.Replace(Path.Combine(folder, "spec.conf"), "spec.conf");

    private static string Describe(TrialDefinition trial) =>
        $"{trial.Name}: " + string.Join(' ', (trial.Spec.Parameters?.Items ?? []).Select(p => $"{p.Name}={ParameterValue.KindName(p.Value.Kind)}:{p.Value.Text}"));

    [Fact]
    public void Grid_axes_of_any_name_multiply_the_cells_in_name_order_each_typed_by_how_it_reads()
    {
        var trials = Load("grid { batch-size = 64, base-lr = 0.01, optimizer = [sgd, adam], dropout = [0, 0.5], hidden = [128, 256], nesterov = true }").Trials;

        // dropout mixes 0 and 0.5: a real; the one-value axis (nesterov) adds no suffix to the names.
        Assert.Equal(
        [
            "b64-lr0.01-dropout0-hidden128-optimizersgd: dropout=real:0 hidden=integer:128 nesterov=boolean:true optimizer=string:sgd",
            "b64-lr0.01-dropout0-hidden128-optimizeradam: dropout=real:0 hidden=integer:128 nesterov=boolean:true optimizer=string:adam",
            "b64-lr0.01-dropout0-hidden256-optimizersgd: dropout=real:0 hidden=integer:256 nesterov=boolean:true optimizer=string:sgd",
            "b64-lr0.01-dropout0-hidden256-optimizeradam: dropout=real:0 hidden=integer:256 nesterov=boolean:true optimizer=string:adam",
            "b64-lr0.01-dropout0.5-hidden128-optimizersgd: dropout=real:0.5 hidden=integer:128 nesterov=boolean:true optimizer=string:sgd",
            "b64-lr0.01-dropout0.5-hidden128-optimizeradam: dropout=real:0.5 hidden=integer:128 nesterov=boolean:true optimizer=string:adam",
            "b64-lr0.01-dropout0.5-hidden256-optimizersgd: dropout=real:0.5 hidden=integer:256 nesterov=boolean:true optimizer=string:sgd",
            "b64-lr0.01-dropout0.5-hidden256-optimizeradam: dropout=real:0.5 hidden=integer:256 nesterov=boolean:true optimizer=string:adam",
        ], trials.Select(Describe));
        Assert.Equal(8, trials.Select(t => t.Id).Distinct().Count());
    }

    [Fact]
    public void Cases_give_their_own_values_and_the_sweep_parameters_the_rest()
    {
        var trials = Load("""
            parameters { dropout = 0.25, optimizer = sgd }
            cases = [
              { name = a, batch-size = 32, base-lr = 0.01, dropout = 0.5 }
              { name = b, batch-size = 32, base-lr = 0.01, optimizer = adam }
            ]
            grid { batch-size = [64], base-lr = [0.02], dropout = [0.1] }
            """).Trials;
        Assert.Equal(
        [
            "a: dropout=real:0.5 optimizer=string:sgd",
            "b: dropout=real:0.25 optimizer=string:adam",
            "b64-lr0.02: dropout=real:0.1 optimizer=string:sgd",
        ], trials.Select(Describe));
    }

    [Fact]
    public void A_trial_id_changes_with_its_parameters_and_is_the_old_one_without()
    {
        var plain = Load("cases = [{ name = a, batch-size = 32, base-lr = 0.01 }]").Trials.Single();
        var withDropout = Load("cases = [{ name = a, batch-size = 32, base-lr = 0.01, dropout = 0.5 }]").Trials.Single();
        var otherDropout = Load("cases = [{ name = a, batch-size = 32, base-lr = 0.01, dropout = 0.25 }]").Trials.Single();
        var lenet = Load("cases = [{ name = a, batch-size = 32, base-lr = 0.01 }]", model: "synthetic").Trials.Single();

        Assert.Null(plain.Spec.Parameters);
        Assert.Equal(lenet.Id, plain.Id);
        Assert.Equal(3, new[] { plain.Id, withDropout.Id, otherDropout.Id }.Distinct().Count());
        // The same values written in another order, or through a default, are the same trial.
        Assert.Equal(withDropout.Id, Load("parameters { dropout = 0.5 }\ncases = [{ name = a, batch-size = 32, base-lr = 0.01 }]").Trials.Single().Id);
    }

    [Fact]
    public void A_parameter_reaches_the_program_as_a_placeholder_and_an_environment_variable()
    {
        var definition = Load("grid { batch-size = 64, base-lr = 0.01, hidden-units = [128] }");
        var parameters = CommandParameters.Of(definition.Trials.Single().Spec);
        Assert.Equal(("hidden-units", "128"), (parameters[^1].Key, parameters[^1].Value));
        Assert.Equal("SWEEP_PARAM_HIDDEN_UNITS", CommandParameters.EnvironmentVariable("hidden-units"));
        Assert.Null(CommandSpec.UnknownPlaceholder("--hidden=${hidden-units}", ["hidden-units"]));
        Assert.Equal("hidden-unit", CommandSpec.UnknownPlaceholder("${hidden-unit}", ["hidden-units"]));
    }

    [Fact]
    public void A_grid_axis_and_a_parameter_default_can_be_set_from_the_command_line()
    {
        var trials = Load("grid { batch-size = 64, base-lr = 0.01, dropout = [0.1] }", "command",
            "sweep.grid.dropout=[0.2, 0.4]", "sweep.parameters.optimizer=adam").Trials;
        Assert.Equal(["b64-lr0.01-dropout0.2: dropout=real:0.2 optimizer=string:adam", "b64-lr0.01-dropout0.4: dropout=real:0.4 optimizer=string:adam"], trials.Select(Describe));
    }

    [Fact]
    public void A_parameter_survives_the_journal_format_with_its_type()
    {
        var spec = Load("grid { batch-size = 64, base-lr = 0.01, dropout = [0.5], hidden = 128, optimizer = adam, nesterov = false }").Trials.Single().Spec;
        string json = System.Text.Json.JsonSerializer.Serialize(spec, Sweep.Protocol.Serialization.SweepSerializer.Json);
        var back = System.Text.Json.JsonSerializer.Deserialize<TrialSpec>(json, Sweep.Protocol.Serialization.SweepSerializer.Json)!;
        Assert.Equal(spec, back);
        Assert.Equal(SweepSpecLoader.TrialId(spec), SweepSpecLoader.TrialId(back));
        // A trial without parameters writes no such field: its events read as they always did.
        var plain = Load("grid { batch-size = 64, base-lr = 0.01 }").Trials.Single().Spec;
        Assert.DoesNotContain("parameters", System.Text.Json.JsonSerializer.Serialize(plain, Sweep.Protocol.Serialization.SweepSerializer.Json), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("grid { batch-size = 64, base-lr = 0.01, dropout = [0.1, high] }", "spec.conf: sweep.grid.dropout[1]: the string \"high\", where sweep.grid.dropout[0] gives dropout the real 0.1: every value of a parameter has one type")]
    [InlineData("cases = [{ name = a, batch-size = 32, base-lr = 0.01, dropout = 0.1 }, { name = b, batch-size = 32, base-lr = 0.01 }]", "spec.conf: sweep.cases[1]: case b has no dropout (give it, or a default in sweep.parameters)")]
    [InlineData("cases = [{ name = a, batch-size = 32, base-lr = 0.01, dropout = 0.1 }]\ngrid { batch-size = 64, base-lr = 0.01 }", "spec.conf: sweep.grid: has no dropout (another part of the spec gives it: give it as an axis too, or a default in sweep.parameters)")]
    [InlineData("grid { batch-size = 64, base-lr = 0.01, batch_size = [1] }", "spec.conf: sweep.grid.batch_size: unknown key (did you mean batch-size?)")]
    [InlineData("grid { batch-size = 64, base-lr = 0.01, seeds = [1, 2] }", "spec.conf: sweep.grid.seeds: unknown key (did you mean seed?)")]
    [InlineData("cases = [{ name = a, batch-size = 32, BaseLR = 0.01 }]", "spec.conf: sweep.cases[0].BaseLR: unknown key (did you mean base-lr?)")]
    [InlineData("cases = [{ name = a, batch-size = 32, base-lr = 0.01, test-interval = 50 }]", "spec.conf: sweep.cases[0].test-interval: test-interval is set for the whole sweep (sweep.test-interval), not here")]
    [InlineData("grid { batch-size = 64, base-lr = 0.01, dropout = [] }", "spec.conf: sweep.grid.dropout: must list at least one value")]
    [InlineData("grid { batch-size = 64, base-lr = 0.01, layers = [[1, 2]] }", "spec.conf: sweep.grid.layers[0]: expected one value: a number, true or false, or text")]
    [InlineData("cases = [{ name = a, batch-size = 32, base-lr = 0.01, dropout = [0.1] }]", "spec.conf: sweep.cases[0].dropout: expected one value: a number, true or false, or text")]
    [InlineData("parameters { hidden-size = 1, hidden_size = 2 }\ngrid { batch-size = 64, base-lr = 0.01 }", "spec.conf: sweep.parameters.hidden_size: hidden_size and hidden-size (sweep.parameters.hidden-size) are the same environment variable SWEEP_PARAM_HIDDEN_SIZE: rename one")]
    [InlineData("parameters { \"2fast\" = 1 }\ngrid { batch-size = 64, base-lr = 0.01 }", "spec.conf: sweep.parameters.2fast: a parameter's name is a letter, then letters, digits, '-' or '_'")]
    public void A_bad_parameter_is_one_line_naming_its_key(string body, string message)
    {
        Assert.Equal(message, Refused(body));
    }

    [Theory]
    [InlineData("lenet", "grid { batch-size = 64, base-lr = 0.01, dropout = [0.1] }", "spec.conf: sweep.grid.dropout: unknown key (this model's trials take no other parameters: named parameters are for model = command and model = plugin)")]
    [InlineData("synthetic", "cases = [{ name = a, batch-size = 32, base-lr = 0.01, dropout = 0.1 }]", "spec.conf: sweep.cases[0].dropout: unknown key (this model's trials take no other parameters: named parameters are for model = command and model = plugin)")]
    [InlineData("synthetic", "parameters { dropout = 0.1 }\ngrid { batch-size = 64, base-lr = 0.01 }", "spec.conf: sweep.parameters: is for model = command or model = plugin only")]
    public void Models_without_named_parameters_refuse_them(string model, string body, string message)
    {
        Assert.Equal(message, Refused(body, model));
    }

    [Fact]
    public void A_placeholder_of_a_parameter_the_sweep_does_not_have_is_refused_naming_the_ones_it_has()
    {
        var path = Path.Combine(folder, "spec.conf");
        File.WriteAllText(path, "sweep { name = mine, model = command, command { arguments = [sh, \"${dropuot}\"] }, grid { batch-size = 64, base-lr = 0.01, dropout = [0.1] } }");
        var message = Assert.Throws<InvalidInputException>(() => SweepSpecLoader.Load(path, [], TextWriter.Null)).Message;
        Assert.Equal($"{path}: sweep.command.arguments[1]: unknown placeholder ${{dropuot}} (known: ${{base-lr}}, ${{batch-size}}, ${{dropout}}, ${{max-iter}}, ${{seed}}, ${{spec-dir}}, ${{test-batch-size}}, ${{test-interval}})", message);
    }
}
