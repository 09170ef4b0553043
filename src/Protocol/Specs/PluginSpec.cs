namespace Sweep.Protocol.Specs;

/// <summary>
/// A plug-in trial's model (<c>model = plugin</c>): a .NET type implementing
/// <c>Sweep.Training.ITrialModel</c> in an assembly the worker processes load and train in-process,
/// with the same self-test, memory accounting and supervision as LeNet (docs/plugins.md).
/// </summary>
/// <param name="AssemblyPath">The plug-in's assembly (<c>.dll</c>), an absolute path (the spec gives it relative to its own folder); its dependencies are found through its <c>.deps.json</c> beside it.</param>
/// <param name="TypeName">The model's type, by its full name (<c>Namespace.Type</c>, a nested type as <c>Outer+Inner</c>).</param>
public sealed record PluginSpec(string AssemblyPath, string TypeName)
{
    /// <summary>The full name of the interface the type implements: <c>Sweep.Training.ITrialModel</c>.</summary>
    public const string InterfaceName = "Sweep.Training.ITrialModel";

    /// <summary>The assembly that defines the interface (shared by the worker and every plug-in): <c>Sweep.Training</c>.</summary>
    public const string InterfaceAssembly = "Sweep.Training";
}
