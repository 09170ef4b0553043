using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;
using Sweep.Training;

namespace Sweep.Orchestrator.Tests.Specs
{
    /// <summary>
    /// <c>model = plugin</c> in a spec: what is read, and each plug-in that cannot run refused in one line
    /// naming its key, before anything runs (the types below, in this test assembly, are the plug-ins).
    /// </summary>
    public sealed class PluginSpecTests : IDisposable
    {
        private readonly string folder = Directory.CreateTempSubdirectory("sweep-plugin-spec-").FullName;

        /// <summary>This test assembly: its types are the plug-ins these tests name.</summary>
        private static string ThisAssembly => typeof(PluginSpecTests).Assembly.Location;

        private const string Namespace = "Sweep.Orchestrator.Tests.Specs.Plugins";

        public void Dispose() => Directory.Delete(folder, recursive: true);

        private static string Spec(string body, string model = "plugin") =>
            $"sweep {{\n  name = mine\n  model = {model}\n  grid {{ batch-size = [32], base-lr = [0.01], dropout = [0.0, 0.5] }}\n  {body}\n}}\n";

        private static string Plugin(string assembly, string type) => $"plugin {{ assembly = \"{assembly}\", type = \"{type}\" }}";

        private SweepDefinition Load(string text)
        {
            var path = Path.Combine(folder, "spec.conf");
            File.WriteAllText(path, text);
            return SweepSpecLoader.Load(path, []);
        }

        /// <summary>The one line, with the spec file's full path shortened to its name.</summary>
        private string Refused(string text) => Assert.Throws<InvalidInputException>(() => Load(text)).Message.Replace(Path.Combine(folder, "spec.conf"), "spec.conf");

        [Fact]
        public void A_plugin_spec_gives_the_assembly_relative_to_the_spec_folder_and_takes_named_parameters_as_grid_axes()
        {
            var copy = Directory.CreateDirectory(Path.Combine(folder, "bin")).FullName;
            File.Copy(ThisAssembly, Path.Combine(copy, Path.GetFileName(ThisAssembly)));

            var definition = Load(Spec(Plugin($"bin/{Path.GetFileName(ThisAssembly)}", $"{Namespace}.GoodModel")));

            Assert.Equal(ModelKind.Plugin, definition.Model);
            Assert.Equal(new PluginSpec(Path.Combine(copy, Path.GetFileName(ThisAssembly)), $"{Namespace}.GoodModel"), definition.Plugin);
            Assert.Null(definition.Command);
            Assert.Equal([ParameterValue.Real(0.0), ParameterValue.Real(0.5)], definition.Trials.Select(t => t.Spec.Parameters!.Get("dropout")!).Order(Comparer<ParameterValue>.Create((a, b) => a.AsReal().CompareTo(b.AsReal()))));
            Assert.NotEqual(definition.Trials[0].Id, definition.Trials[1].Id);
        }

        [Fact]
        public void A_nested_public_type_is_named_with_a_plus()
        {
            Assert.Equal($"{Namespace}.Outer+NestedModel", Load(Spec(Plugin(ThisAssembly, $"{Namespace}.Outer+NestedModel"))).Plugin!.TypeName);
        }

        [Theory]
        [InlineData("NotAModel", "spec.conf: sweep.plugin.type: Sweep.Orchestrator.Tests.Specs.Plugins.NotAModel does not implement Sweep.Training.ITrialModel")]
        [InlineData("NoDefaultConstructor", "spec.conf: sweep.plugin.type: Sweep.Orchestrator.Tests.Specs.Plugins.NoDefaultConstructor has no public parameterless constructor")]
        [InlineData("AbstractModel", "spec.conf: sweep.plugin.type: Sweep.Orchestrator.Tests.Specs.Plugins.AbstractModel is abstract: name a class the sweep can create")]
        [InlineData("InternalModel", "spec.conf: sweep.plugin.type: Sweep.Orchestrator.Tests.Specs.Plugins.InternalModel is not public")]
        public void A_type_that_cannot_be_a_plugin_is_one_line_naming_the_type_key(string type, string message)
        {
            Assert.Equal(message, Refused(Spec(Plugin(ThisAssembly, $"{Namespace}.{type}"))));
        }

        [Fact]
        public void A_missing_type_is_one_line_naming_the_type_key_and_the_types_that_could_be_meant()
        {
            var message = Refused(Spec(Plugin(ThisAssembly, $"{Namespace}.MissingModel")));

            Assert.StartsWith($"spec.conf: sweep.plugin.type: Sweep.Orchestrator.Tests.dll has no type {Namespace}.MissingModel (types implementing Sweep.Training.ITrialModel in it: ", message);
            Assert.Contains($"{Namespace}.GoodModel, ", message);
            Assert.Contains($"{Namespace}.Outer+NestedModel", message);
            Assert.DoesNotContain("NotAModel", message);
            Assert.DoesNotContain("AbstractModel", message);
            Assert.DoesNotContain('\n', message);
        }

        [Fact]
        public void A_missing_file_a_folder_and_a_file_that_is_no_assembly_are_one_line_naming_the_assembly_key()
        {
            Assert.Equal($"spec.conf: sweep.plugin.assembly: no such file: {folder}/bin/Missing.dll (build the plug-in first, e.g. dotnet build)",
                Refused(Spec(Plugin("bin/Missing.dll", "X.Model"))));
            Assert.Equal($"spec.conf: sweep.plugin.assembly: {folder} is a folder, not an assembly (name the plug-in's .dll)", Refused(Spec(Plugin(".", "X.Model"))));
            File.WriteAllText(Path.Combine(folder, "text.dll"), "not an assembly\n");
            Assert.Equal($"spec.conf: sweep.plugin.assembly: {folder}/text.dll is not a .NET assembly", Refused(Spec(Plugin("text.dll", "X.Model"))));
        }

        [Theory]
        [InlineData("", "spec.conf: sweep.plugin: missing (model = plugin needs plugin { assembly = PATH, type = NAME })")]
        [InlineData("plugin { type = \"X.Model\" }", "spec.conf: sweep.plugin.assembly: missing (the plug-in's .dll, relative to the spec's folder)")]
        [InlineData("plugin { assembly = \"x.dll\" }", "spec.conf: sweep.plugin.type: missing (the full name of the type that implements Sweep.Training.ITrialModel)")]
        [InlineData("plugin { assembly = \"x.dll\", typ = \"X.Model\" }", "spec.conf: sweep.plugin.typ: unknown key (did you mean type?)")]
        public void A_plugin_block_without_its_keys_is_one_line_naming_the_key(string body, string message)
        {
            Assert.Equal(message, Refused(Spec(body)));
        }

        [Fact]
        public void A_plugin_block_for_another_model_and_parameters_for_lenet_are_refused()
        {
            Assert.Equal("spec.conf: sweep.plugin: is for model = plugin only",
                Refused($"sweep {{ name = x, model = synthetic, grid {{ batch-size = [8], base-lr = [0.1] }}, {Plugin(ThisAssembly, $"{Namespace}.GoodModel")} }}"));
            Assert.StartsWith("spec.conf: sweep.grid.dropout: unknown key",
                Refused($"sweep {{ name = x, model = lenet, grid {{ batch-size = [8], base-lr = [0.1], dropout = [0.5] }} }}"));
        }

        [Fact]
        public void The_check_reads_metadata_only_so_no_code_of_the_plugin_runs()
        {
            Plugins.ThrowingConstructorModel.Created = 0;

            Assert.Equal(ModelKind.Plugin, Load(Spec(Plugin(ThisAssembly, $"{Namespace}.ThrowingConstructorModel"))).Model);
            Assert.Equal(0, Plugins.ThrowingConstructorModel.Created);
            Assert.Null(PluginCheck.TypeProblem(ThisAssembly, $"{Namespace}.ThrowingConstructorModel"));
        }
    }
}

namespace Sweep.Orchestrator.Tests.Specs.Plugins
{
    /// <summary>A plug-in that can run (the spec tests never train it).</summary>
    public sealed class GoodModel : ITrialModel
    {
        /// <inheritdoc/>
        public void Train(ITrialContext context) => throw new NotSupportedException("spec tests only");
    }

    /// <summary>Holds a plug-in as a nested type.</summary>
    public static class Outer
    {
        /// <summary>A plug-in named <c>Outer+NestedModel</c>.</summary>
        public sealed class NestedModel : ITrialModel
        {
            /// <inheritdoc/>
            public void Train(ITrialContext context) => throw new NotSupportedException("spec tests only");
        }
    }

    /// <summary>Implements the interface but cannot be created without an argument.</summary>
    public sealed class NoDefaultConstructor(int size) : ITrialModel
    {
        /// <inheritdoc/>
        public void Train(ITrialContext context) => throw new NotSupportedException($"spec tests only ({size})");
    }

    /// <summary>Cannot be created at all.</summary>
    public abstract class AbstractModel : ITrialModel
    {
        /// <inheritdoc/>
        public abstract void Train(ITrialContext context);
    }

    /// <summary>Not visible to the worker.</summary>
    internal sealed class InternalModel : ITrialModel
    {
        public void Train(ITrialContext context) => throw new NotSupportedException("spec tests only");
    }

    /// <summary>A class that is no model.</summary>
    public sealed class NotAModel
    {
        /// <summary>Something.</summary>
        public int Size { get; init; }
    }

    /// <summary>Counts its creations: checking a spec must create none (it reads metadata only).</summary>
    public sealed class ThrowingConstructorModel : ITrialModel
    {
        /// <summary>How many were created.</summary>
        public static int Created;

        /// <summary>Counts, then throws.</summary>
        public ThrowingConstructorModel()
        {
            Interlocked.Increment(ref Created);
            throw new InvalidOperationException("created");
        }

        /// <inheritdoc/>
        public void Train(ITrialContext context) => throw new NotSupportedException("spec tests only");
    }
}
