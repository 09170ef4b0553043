using System.Runtime.CompilerServices;

namespace Sweep.Orchestrator.Hosting;

/// <summary>
/// The worker-process program, <c>Sweep.GpuWorker</c>, that a build or publish puts next to `sweep`.
/// Without it the installation is incomplete: that is a fault of the installation, not of the
/// user's spec or flags, so it is one line naming the missing file and saying to rebuild, with exit
/// code 1 (the README's code for a failure that is not bad input), before anything is persisted.
/// </summary>
public static class WorkerProgram
{
    /// <summary>The assembly `sweep` itself loads (its worker actors and trainer are there), and the worker process runs under `dotnet`.</summary>
    public const string AssemblyFile = "Sweep.GpuWorker.dll";

    /// <summary>
    /// The line to print when <see cref="AssemblyFile"/> is not next to this program, or null when it is.
    /// Checked before any type of that assembly is touched: without it no command could even be set up.
    /// </summary>
    public static string? MissingAssembly()
    {
        var path = Path.Combine(AppContext.BaseDirectory, AssemblyFile);
        return File.Exists(path) ? null : Missing(path);
    }

    /// <summary>
    /// Refuses to go on (<see cref="SetupFaultException"/>) when the file a worker process is started
    /// from is missing: the apphost <c>Sweep.GpuWorker</c>, or <see cref="AssemblyFile"/> under `dotnet`.
    /// For commands that start worker processes, before they persist anything.
    /// </summary>
    // Not inlined: a caller is compiled without loading Sweep.GpuWorker.dll, which MissingAssembly checks first.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void RequireStartable()
    {
        var path = GpuWorker.Workers.WorkerProcessSlot.ProgramFile;
        if (!File.Exists(path)) throw new SetupFaultException(Missing(path));
    }

    private static string Missing(string path) =>
        $"{path} is missing: the worker-process program must be next to sweep; this installation is incomplete, rebuild it (dotnet build -c Release, or publish it again)";
}
