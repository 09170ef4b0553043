using System.Reflection;
using System.Runtime.InteropServices;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Specs;

/// <summary>
/// Checks a plug-in (<c>model = plugin</c>) when its spec is read, by its metadata alone
/// (<see cref="MetadataLoadContext"/>): none of its code runs and LibTorch is never loaded in the
/// orchestrator's process (only worker processes load it). Each problem is one sentence, for the
/// spec error naming the key.
/// </summary>
public static class PluginCheck
{
    /// <summary>What is wrong with <paramref name="assemblyPath"/> as a plug-in's assembly (no such file, not a .NET assembly), or null.</summary>
    /// <param name="assemblyPath">The assembly's absolute path.</param>
    public static string? AssemblyProblem(string assemblyPath)
    {
        if (Directory.Exists(assemblyPath)) return $"{assemblyPath} is a folder, not an assembly (name the plug-in's .dll)";
        if (!File.Exists(assemblyPath)) return $"no such file: {assemblyPath} (build the plug-in first, e.g. dotnet build)";
        try
        {
            _ = AssemblyName.GetAssemblyName(assemblyPath);
            return null;
        }
        catch (BadImageFormatException)
        {
            return $"{assemblyPath} is not a .NET assembly";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot read {assemblyPath}: {e.Message}";
        }
    }

    /// <summary>
    /// What is wrong with <paramref name="typeName"/> in the assembly at <paramref name="assemblyPath"/>
    /// (which <see cref="AssemblyProblem"/> accepted), or null: no such type, not public, abstract, not
    /// implementing <see cref="PluginSpec.InterfaceName"/>, or without a public parameterless constructor.
    /// Types the assembly uses are resolved in its folder, next to this program (<c>Sweep.Training</c>,
    /// TorchSharp) and in the .NET runtime's folder.
    /// </summary>
    /// <param name="assemblyPath">The assembly's absolute path.</param>
    /// <param name="typeName">The type's full name.</param>
    public static string? TypeProblem(string assemblyPath, string typeName)
    {
        using var context = new MetadataLoadContext(new PathAssemblyResolver(ResolverPaths(assemblyPath)), typeof(object).Assembly.GetName().Name);
        string file = Path.GetFileName(assemblyPath);
        try
        {
            var assembly = context.LoadFromAssemblyPath(assemblyPath);
            var type = assembly.GetType(typeName, throwOnError: false);
            if (type is null)
            {
                var candidates = Implementations(assembly);
                return $"{file} has no type {typeName}" + (candidates.Count > 0 ? $" (types implementing {PluginSpec.InterfaceName} in it: {string.Join(", ", candidates)})" : $" (and no type in it implements {PluginSpec.InterfaceName})");
            }
            if (!Implements(type)) return $"{typeName} does not implement {PluginSpec.InterfaceName}";
            if (!(type.IsPublic || type.IsNestedPublic)) return $"{typeName} is not public";
            if (type.IsAbstract || type.IsInterface) return $"{typeName} is abstract: name a class the sweep can create";
            if (type.IsGenericTypeDefinition) return $"{typeName} is generic: name a class the sweep can create";
            if (type.GetConstructor(BindingFlags.Public | BindingFlags.Instance, Type.EmptyTypes) is null) return $"{typeName} has no public parameterless constructor";
            return null;
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException or TypeLoadException)
        {
            return $"cannot read {typeName} in {file}: {e.Message.Split('\n')[0]}";
        }
    }

    private static bool Implements(Type type) => type.GetInterfaces().Any(i => i.FullName == PluginSpec.InterfaceName && i.Assembly.GetName().Name == PluginSpec.InterfaceAssembly);

    /// <summary>The public, concrete types of <paramref name="assembly"/> that implement the interface (those that can be read), by full name.</summary>
    private static List<string> Implementations(Assembly assembly)
    {
        Type?[] types;
        try
        {
            types = assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException partial)
        {
            types = partial.Types;
        }
        var found = new List<string>();
        foreach (var type in types.OfType<Type>())
        {
            try
            {
                if ((type.IsPublic || type.IsNestedPublic) && !type.IsAbstract && Implements(type)) found.Add(type.FullName!);
            }
            catch (Exception e) when (e is FileNotFoundException or FileLoadException or TypeLoadException)
            {
                // A type whose base cannot be resolved cannot be the plug-in's either.
            }
        }
        return [.. found.Order(StringComparer.Ordinal)];
    }

    /// <summary>The plug-in's folder first, then this program's, then the runtime's: one path per assembly name, the first found.</summary>
    private static IEnumerable<string> ResolverPaths(string assemblyPath)
    {
        string[] folders = [Path.GetDirectoryName(assemblyPath)!, AppContext.BaseDirectory, RuntimeEnvironment.GetRuntimeDirectory()];
        var byName = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var folder in folders.Where(Directory.Exists))
        {
            foreach (var dll in Directory.EnumerateFiles(folder, "*.dll")) byName.TryAdd(Path.GetFileNameWithoutExtension(dll), dll);
        }
        byName[Path.GetFileNameWithoutExtension(assemblyPath)] = assemblyPath;
        return byName.Values;
    }
}
