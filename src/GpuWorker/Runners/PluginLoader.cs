using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.Loader;
using Sweep.Protocol;
using Sweep.Protocol.Specs;
using Sweep.Training;

namespace Sweep.GpuWorker.Runners;

/// <summary>
/// Loads plug-in models (<see cref="PluginSpec"/>) in a worker process: each assembly once per
/// process, in an <see cref="AssemblyLoadContext"/> of its own that finds the plug-in's own
/// dependencies through its <c>.deps.json</c> (<see cref="AssemblyDependencyResolver"/>) but shares
/// <c>Sweep.Training</c> (so its <see cref="ITrialModel"/> is the worker's) and TorchSharp (so there is
/// one LibTorch, with the kernels and threads the worker set) with the worker.
/// </summary>
public static class PluginLoader
{
    /// <summary>The assemblies a plug-in always gets from the worker, never from its own folder.</summary>
    public static IReadOnlySet<string> Shared { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { PluginSpec.InterfaceAssembly, "TorchSharp" };

    private static readonly ConcurrentDictionary<string, Lazy<Assembly>> Loaded = new(StringComparer.Ordinal);

    /// <summary>A new instance of the plug-in's model type, for one attempt.</summary>
    /// <param name="plugin">The assembly and type.</param>
    /// <exception cref="InvalidInputException">The assembly cannot be loaded, the type is not there, does not implement <see cref="ITrialModel"/>, or cannot be created; the message names which.</exception>
    public static ITrialModel Create(PluginSpec plugin)
    {
        Assembly assembly;
        try
        {
            assembly = Loaded.GetOrAdd(plugin.AssemblyPath, path => new Lazy<Assembly>(() => new PluginLoadContext(path).LoadFromAssemblyPath(path))).Value;
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException or IOException)
        {
            Loaded.TryRemove(plugin.AssemblyPath, out _);
            throw new InvalidInputException($"plug-in {plugin.AssemblyPath}: cannot load it: {e.Message.Split('\n')[0]}");
        }
        var type = assembly.GetType(plugin.TypeName, throwOnError: false)
            ?? throw new InvalidInputException($"plug-in {plugin.AssemblyPath}: has no type {plugin.TypeName}");
        if (!typeof(ITrialModel).IsAssignableFrom(type))
            throw new InvalidInputException($"plug-in {plugin.AssemblyPath}: {plugin.TypeName} does not implement {PluginSpec.InterfaceName}");
        try
        {
            return (ITrialModel)Activator.CreateInstance(type)!;
        }
        catch (TargetInvocationException e) when (e.InnerException is { } inner)
        {
            throw new InvalidOperationException($"plug-in {plugin.TypeName}: its constructor threw {inner.GetType().Name}: {inner.Message.Split('\n')[0]}", inner);
        }
        catch (MissingMethodException)
        {
            throw new InvalidInputException($"plug-in {plugin.AssemblyPath}: {plugin.TypeName} has no public parameterless constructor");
        }
    }

    /// <summary>One plug-in's assemblies: its own dependencies from its folder, <see cref="Shared"/> and the framework from the worker.</summary>
    private sealed class PluginLoadContext(string assemblyPath) : AssemblyLoadContext($"plugin {Path.GetFileName(assemblyPath)}", isCollectible: false)
    {
        private readonly AssemblyDependencyResolver resolver = new(assemblyPath);

        protected override Assembly? Load(AssemblyName name)
        {
            if (name.Name is { } simple && Shared.Contains(simple)) return null;
            return resolver.ResolveAssemblyToPath(name) is { } path ? LoadFromAssemblyPath(path) : null;
        }

        protected override IntPtr LoadUnmanagedDll(string unmanagedDllName) =>
            resolver.ResolveUnmanagedDllToPath(unmanagedDllName) is { } path ? LoadUnmanagedDllFromPath(path) : IntPtr.Zero;
    }
}
