using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol.Events;

namespace Sweep.Orchestrator.Tests;

/// <summary>
/// Only worker processes load LibTorch: a LeNet sweep's own process and the commands that read a
/// journal never map it (checked in /proc/PID/maps, and by the dynamic loader itself with LD_DEBUG).
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class WorkerProcessTests : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(4);
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-processes-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string DataDir => Path.Combine(temp, "data");

    private string LeNetSpec()
    {
        var path = Path.Combine(temp, "lenet.conf");
        File.WriteAllText(path, """
            sweep {
              name = one-lenet
              model = lenet
              max-iter = 100
              test-interval = 50
              cases = [ { name = only, batch-size = 64, base-lr = 0.01 } ]
            }
            """);
        return path;
    }

    /// <summary>LD_DEBUG=files makes glibc's loader name every library a process loads, dlopen'ed ones included, on standard error.</summary>
    private static readonly Dictionary<string, string> LoaderTrace = new() { ["LD_DEBUG"] = "files" };

    [Fact]
    public async Task A_lenet_sweep_trains_in_worker_processes_and_neither_its_process_nor_the_reading_commands_load_LibTorch()
    {
        bool sweepMapped, workerMapped;
        using (var run = SweepProcess.Start("run", LeNetSpec(), "--sweep-id", "lenet", "--data-dir", DataDir, "--workers", "1", "--threads", "1"))
        {
            run.WaitForLine(l => l.Contains("only: iter 50/100", StringComparison.Ordinal), Long);
            var worker = Assert.Single(run.WorkerProcesses());
            workerMapped = SweepProcess.MapsLibTorch(worker);
            sweepMapped = SweepProcess.MapsLibTorch(run.Id);
            Assert.True(run.WaitForExit(Long) == 0, run.Stdout + run.Stderr);
        }
        Assert.True(workerMapped, "the worker process trains LeNet, so it maps LibTorch");
        Assert.False(sweepMapped, "the sweep process (coordinator and agent) mapped LibTorch");
        Assert.Single((await Events("lenet")).OfType<TrialCompleted>());

        foreach (var command in new[] { new[] { "status", "lenet" }, ["status"], ["report", "lenet"], ["logs", "lenet"], ["watch", "lenet"] })
        {
            var (exit, stdout, stderr) = SweepProcess.RunWith(LoaderTrace, [.. command, "--data-dir", DataDir]);
            Assert.True(exit == 0, $"sweep {string.Join(' ', command)}: {stdout}");
            Assert.Contains("libSystem.Native.so", stderr); // the trace works: the runtime's own native library is in it
            Assert.DoesNotContain("libtorch", stderr);
        }

        int port = FreePort.Next();
        using var dashboard = SweepProcess.StartWith(LoaderTrace, "dashboard", "--data-dir", DataDir, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        dashboard.WaitForLine(l => l.StartsWith("dashboard for ", StringComparison.Ordinal), Long);
        using var http = new HttpClient();
        Assert.Contains("lenet", await http.GetStringAsync($"http://127.0.0.1:{port}/api/sweeps/lenet"));
        Assert.False(SweepProcess.MapsLibTorch(dashboard.Id));
        Assert.DoesNotContain("libtorch", dashboard.Stderr);
    }

    /// <summary>
    /// An installation without the worker-process program: the dll (`sweep` loads it itself; run
    /// through dotnet) or only its apphost (run as the `sweep` apphost, which starts that one). Either
    /// is one line naming the file and saying to rebuild, exit code 1 (a fault of the installation,
    /// not of the spec), before anything is persisted; no stack trace.
    /// </summary>
    [Theory]
    [InlineData("Sweep.GpuWorker.dll", "sweep.dll")]
    [InlineData("Sweep.GpuWorker", "sweep")]
    public void A_missing_worker_program_is_one_line_naming_it_and_exit_1_before_anything_is_persisted(string missing, string runAs)
    {
        var install = InstallationWithout(missing);
        var spec = Path.Combine(RepositoryFiles.Root, "hocon", "sweeps", "synthetic-faults.conf");

        var (exit, stdout, stderr) = SweepProcess.RunProgram(Path.Combine(install, runAs), "run", spec, "--data-dir", DataDir);

        Assert.Equal(1, exit);
        Assert.Equal(
            $"sweep: {Path.Combine(install, missing)} is missing: the worker-process program must be next to sweep; this installation is incomplete, rebuild it (dotnet build -c Release, or publish it again)",
            Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.DoesNotContain("   at ", stdout + stderr);
        Assert.False(Directory.Exists(DataDir), "nothing is persisted: " + stdout);
    }

    /// <summary>A copy of the built program without <paramref name="missing"/>: its own sweep files, links to the rest.</summary>
    private string InstallationWithout(string missing)
    {
        var install = Path.Combine(temp, "install");
        Directory.CreateDirectory(install);
        string[] copied = ["sweep", "sweep.dll", "sweep.deps.json", "sweep.runtimeconfig.json"];
        foreach (var entry in Directory.EnumerateFileSystemEntries(AppContext.BaseDirectory))
        {
            var name = Path.GetFileName(entry);
            var target = Path.Combine(install, name);
            if (name == missing) continue;
            if (copied.Contains(name)) File.Copy(entry, target);
            else if (Directory.Exists(entry)) Directory.CreateSymbolicLink(target, entry);
            else File.CreateSymbolicLink(target, entry);
        }
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Path.Combine(install, "sweep"), File.GetUnixFileMode(Path.Combine(AppContext.BaseDirectory, "sweep")));
        return install;
    }

    private async Task<IReadOnlyList<ISweepEvent>> Events(string sweepId)
    {
        return await SweepJournal.EventsAsync(new JournalSettings(DataDir), sweepId);
    }
}
