using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Tests.Specs;

/// <summary><c>model = command</c> in a spec: what is read, and each mistake refused in one line before anything runs.</summary>
public sealed class CommandSpecTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("sweep-command-spec-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private string Spec(string body) => $"sweep {{\n  name = mine\n  model = command\n  grid {{ batch-size = [32, 64], base-lr = [0.01] }}\n  {body}\n}}\n";

    private SweepDefinition Load(string body)
    {
        var path = Path.Combine(folder, "spec.conf");
        File.WriteAllText(path, Spec(body));
        return SweepSpecLoader.Load(path, []);
    }

    /// <summary>The one line, with the spec file's full path shortened to its name.</summary>
    private string Refused(string body) => Assert.Throws<InvalidInputException>(() => Load(body)).Message.Replace(Path.Combine(folder, "spec.conf"), "spec.conf");

    [Fact]
    public void A_command_spec_keeps_its_arguments_as_written_with_the_spec_folder_and_the_defaults()
    {
        var script = Path.Combine(folder, "train.sh");
        File.WriteAllText(script, "#!/bin/sh\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var definition = Load("command { arguments = [\"${spec-dir}/train.sh\", \"--lr\", \"${base-lr}\", \"--batch\", \"${batch-size}\"] }");

        Assert.Equal(ModelKind.Command, definition.Model);
        Assert.Equal(["${spec-dir}/train.sh", "--lr", "${base-lr}", "--batch", "${batch-size}"], definition.Command!.Arguments);
        Assert.Equal(folder, definition.Command.SpecDirectory);
        Assert.Equal((CommandSpec.DefaultGraceSeconds, CommandSpec.DefaultOutOfMemoryPattern), (definition.Command.GraceSeconds, definition.Command.OutOfMemoryPattern));
        Assert.Equal(2, definition.Trials.Count);
        Assert.Equal(3.5, Load("command { arguments = [sh, -c, \"exit 0\"], grace-period = 3.5s }").Command!.GraceSeconds);
    }

    [Theory]
    [InlineData("", "spec.conf: sweep.command: missing (model = command needs command { arguments = [\"program\", \"arg\", ...] })")]
    [InlineData("command { arguments = [] }", "spec.conf: sweep.command.arguments: must name the program to run")]
    [InlineData("command { arguments = [\"sh\", \"${learning-rate}\"] }", "spec.conf: sweep.command.arguments[1]: unknown placeholder ${learning-rate} (known: ${base-lr}, ${batch-size}, ${max-iter}, ${seed}, ${spec-dir}, ${test-batch-size}, ${test-interval})")]
    [InlineData("command { arguments = [\"no-such-program-for-sweep\"] }", "spec.conf: sweep.command.arguments[0]: program 'no-such-program-for-sweep' is not on PATH")]
    [InlineData("command { arguments = [\"${batch-size}\"] }", "spec.conf: sweep.command.arguments[0]: the program itself cannot be a trial parameter")]
    [InlineData("command { arguments = [sh], grace-perod = 2s }", "spec.conf: sweep.command.grace-perod: unknown key (did you mean grace-period?)")]
    [InlineData("command { arguments = [sh], out-of-memory-pattern = \"([\" }", "spec.conf: sweep.command.out-of-memory-pattern: not a regular expression")]
    public void A_bad_command_is_one_line_naming_its_key(string body, string message)
    {
        Assert.StartsWith(message, Refused(body));
    }

    [Fact]
    public void A_missing_script_is_named_with_its_full_path_and_a_command_for_another_model_is_refused()
    {
        Assert.Equal($"spec.conf: sweep.command.arguments[0]: no such program: {folder}/missing.py (or it is not executable)",
            Refused("command { arguments = [\"${spec-dir}/missing.py\"] }"));
        var lenet = Path.Combine(folder, "lenet.conf");
        File.WriteAllText(lenet, "sweep { name = x, model = synthetic, grid { batch-size = [8], base-lr = [0.1] }, command { arguments = [sh] } }");
        Assert.EndsWith("sweep.command: is for model = command only", Assert.Throws<InvalidInputException>(() => SweepSpecLoader.Load(lenet, [])).Message);
    }
}
