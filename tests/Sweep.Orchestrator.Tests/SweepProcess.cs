using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Sweep.Orchestrator.Tests;

/// <summary>Runs the real `sweep` program as an OS process, as a user would.</summary>
public sealed class SweepProcess : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder stdout = new();
    private readonly StringBuilder stderr = new();
    private readonly List<string> lines = [];
    private readonly List<OutputLine> timed = [];

    /// <summary>A line the process wrote, stamped when it arrived here; <paramref name="Error"/> for stderr.</summary>
    public sealed record OutputLine(DateTimeOffset At, string Text, bool Error);

    /// <param name="program">The program to run: a <c>sweep.dll</c> (run through <c>dotnet</c>) or an apphost; by default the built sweep.dll next to the tests.</param>
    private SweepProcess(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, string? program = null)
    {
        program ??= Path.Combine(AppContext.BaseDirectory, "sweep.dll");
        bool throughDotnet = program.EndsWith(".dll", StringComparison.Ordinal);
        var start = new ProcessStartInfo(throughDotnet ? "dotnet" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (throughDotnet) start.ArgumentList.Add(program);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (lines)
            {
                lines.Add(e.Data);
                stdout.AppendLine(e.Data);
                timed.Add(new OutputLine(DateTimeOffset.UtcNow, e.Data, Error: false));
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (lines)
            {
                stderr.AppendLine(e.Data);
                timed.Add(new OutputLine(DateTimeOffset.UtcNow, e.Data, Error: true));
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static SweepProcess Start(params string[] args) => new(args);

    /// <summary>Starts `sweep` with extra environment variables (e.g. an injected self-test fault).</summary>
    public static SweepProcess StartWith(IReadOnlyDictionary<string, string> environment, params string[] args) => new(args, environment);

    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args) => RunWith(new Dictionary<string, string>(), args);

    public static (int ExitCode, string Stdout, string Stderr) RunWith(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var run = StartWith(environment, args);
        return (run.WaitForExit(TimeSpan.FromMinutes(3)), run.Stdout, run.Stderr);
    }

    /// <summary>
    /// Runs another copy of the program to its end: <paramref name="program"/> is a <c>sweep.dll</c>
    /// (run through <c>dotnet</c>) or the <c>sweep</c> apphost, e.g. in an installation with a file missing.
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr) RunProgram(string program, params string[] args)
    {
        using var run = new SweepProcess(args, program: program);
        return (run.WaitForExit(TimeSpan.FromMinutes(3)), run.Stdout, run.Stderr);
    }

    public string Stdout
    {
        get { lock (lines) return stdout.ToString(); }
    }

    public string Stderr
    {
        get { lock (lines) return stderr.ToString(); }
    }

    /// <summary>Waits until a line of output satisfies <paramref name="predicate"/>.</summary>
    public void WaitForLine(Func<string, bool> predicate, TimeSpan timeout) => WaitForLines(all => all.Any(predicate), timeout);

    /// <summary>Waits until the output so far satisfies <paramref name="predicate"/>.</summary>
    public void WaitForLines(Func<IReadOnlyList<string>, bool> predicate, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            lock (lines)
            {
                if (predicate(lines)) return;
            }
            if (process.HasExited) throw new InvalidOperationException($"sweep exited ({process.ExitCode}) before the line came.\n{Stdout}\n{Stderr}");
            Thread.Sleep(50);
        }
        throw new TimeoutException($"no such line within {timeout}.\n{Stdout}\n{Stderr}");
    }

    /// <summary>Every line of stdout and stderr so far, in the order they arrived, each with its time.</summary>
    public IReadOnlyList<OutputLine> Output
    {
        get { lock (lines) return timed.ToList(); }
    }

    /// <summary>Whether <paramref name="line"/> is a cluster node saying it is a member in state Up (before that, the split-brain resolver does not count it).</summary>
    public static bool SaysUp(string line) => line.StartsWith("cluster node ", StringComparison.Ordinal) && line.EndsWith(" is up", StringComparison.Ordinal);

    public bool HasExited => process.HasExited;

    /// <summary>The process id (of the `dotnet` process that runs sweep.dll: the one a signal ends).</summary>
    public int Id => process.Id;

    /// <summary>The exit code of a process that has exited.</summary>
    public int ExitCode => process.ExitCode;

    /// <summary>The worker processes this sweep process has started (its children running Sweep.GpuWorker), by process id.</summary>
    public IReadOnlyList<int> WorkerProcesses() => ChildWorkerProcesses(process.Id);

    /// <summary>The live processes whose parent is <paramref name="parent"/> and whose command line runs Sweep.GpuWorker.</summary>
    public static IReadOnlyList<int> ChildWorkerProcesses(int parent) =>
        ChildProcesses(parent).Where(pid => CommandLine(pid).Contains("Sweep.GpuWorker", StringComparison.Ordinal)).ToList();

    /// <summary>The live processes whose parent is <paramref name="parent"/>.</summary>
    public static IReadOnlyList<int> ChildProcesses(int parent) =>
        Directory.GetDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && ParentOf(pid) == parent && !IsGone(pid))
            .ToList();

    /// <summary>Whether process <paramref name="pid"/> is gone: no such process, or a zombie waiting for its parent to reap it.</summary>
    public static bool IsGone(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static int ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }

    /// <summary>Process <paramref name="pid"/>'s command line, its arguments separated by spaces ("" when it is gone).</summary>
    public static string CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>Whether process <paramref name="pid"/> has LibTorch mapped (its /proc maps name libtorch).</summary>
    public static bool MapsLibTorch(int pid) => File.ReadLines($"/proc/{pid}/maps").Any(line => line.Contains("libtorch", StringComparison.Ordinal));

    public void Signal(int signal)
    {
        if (kill(process.Id, signal) != 0) throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"sweep did not exit within {timeout}.\n{Stdout}\n{Stderr}");
        }
        process.WaitForExit();
        return process.ExitCode;
    }

    public void Dispose()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.Dispose();
    }

    public const int SIGINT = 2;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/>: 0 when sent (libc's kill).</summary>
    public static int Kill(int pid, int signal) => kill(pid, signal);

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
