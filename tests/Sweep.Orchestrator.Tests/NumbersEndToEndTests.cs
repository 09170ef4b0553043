using System.Globalization;
using System.Text.Json;
using Sweep.GpuWorker.SelfTest;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests;

/// <summary>
/// The numbers a user acts on, as real `sweep` processes produce them: every trial of a sweep gives
/// exactly what it gives alone, a device that fails its self-test never trains, and `sweep selftest`.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class NumbersEndToEndTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-numbers-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string DataDir => Path.Combine(temp, "data");

    private static string Preset => Path.Combine(AppContext.BaseDirectory, "hocon", "sweeps", "paper-lenet.conf");

    private static Dictionary<string, string> Fault(string value) => new() { [SelfTestFault.Variable] = value };


    [Fact]
    public async Task Every_trial_of_the_paper_preset_gives_exactly_its_solo_numbers_in_two_independent_sweeps()
    {
        // Two sweeps in the default layout (a slot per core, each slot a worker process of its own).
        foreach (var id in new[] { "paper-a", "paper-b" })
        {
            var (exit, stdout, stderr) = SweepProcess.Run("run", Preset, "--sweep-id", id, "--data-dir", DataDir, "--set", "sweep.max-iter=200");
            Assert.True(exit == 0, stdout + stderr);
            Assert.Contains($"report for sweep {id}", stdout);
        }
        var runs = new[] { await Events("paper-a"), await Events("paper-b") };
        var definition = runs[0].OfType<SweepStarted>().Single().Definition;
        var slots = runs[0].OfType<SlotChecked>().Select(e => e.Slot).ToList();
        Assert.Equal(Environment.ProcessorCount, slots.Count);
        Assert.All(slots, slot => Assert.Equal(1, slot.Threads));

        // Each trial alone: `sweep train` with the same spec and thread count, two at a time.
        using var gate = new SemaphoreSlim(Environment.ProcessorCount);
        var solos = await Task.WhenAll(definition.Trials.Select(async trial =>
        {
            await gate.WaitAsync();
            try
            {
                return (trial.Name, Points: await Task.Run(() => SoloTrain.Points(trial.Spec, threads: 1)));
            }
            finally
            {
                gate.Release();
            }
        }));

        foreach (var events in runs)
        {
            var started = events.OfType<TrialStarted>().ToList();
            Assert.True(started.Select(e => e.WorkerId).Distinct().Count() > 1, "trials ran on more than one slot");
            foreach (var (name, solo) in solos)
            {
                var trial = definition.Trials.Single(t => t.Name == name);
                var points = events.OfType<TrialProgress>().Where(e => e.TrialId == trial.Id).Select(e => SoloTrain.Computed(e.Metrics)).ToList();
                Assert.NotEmpty(points);
                // A trial the sweep stopped as diverged (CASE8: loss above 10x its first) has a prefix of its solo run.
                var expected = events.OfType<TrialDiverged>().Any(d => d.TrialId == trial.Id) ? solo.Take(points.Count).ToList() : solo;
                Assert.True(expected.SequenceEqual(points), $"{name}: sweep {string.Join(" ", points)} vs solo {string.Join(" ", solo)}");
            }
            Assert.Equal(["CASE8"], events.OfType<TrialDiverged>().Select(d => definition.Trials.Single(t => t.Id == d.TrialId).Name));
            Assert.Equal(8, events.OfType<TrialCompleted>().Count());
            Assert.Empty(events.OfType<TrialFailed>());
        }

        // Each trial's peak memory is its own worker process's (Fig. 7's claim needs that): ordered by
        // batch size. A worker process runs one trial after another, and what an earlier trial (or the
        // process's first, JIT-compiling trial) leaves resident can only raise a later figure: measured
        // on this machine, up to about 50 MB for the same shape (2026-12-01: batch-64 trials read
        // 338-363 MB in one sweep). The smallest reading of each batch size is the one nothing inflated;
        // those are ordered, and CASE3 (the one trial of batch 128) reads above every smaller batch.
        // A trial that diverged before its first test pass never ran the test batch: left out.
        foreach (var id in new[] { "paper-a", "paper-b" })
        {
            var trials = (await SweepJournal.ReadAsync(new JournalSettings(DataDir), id))!.Trials
                .Where(t => t.State == TrialState.Completed).ToList();
            var least = trials.GroupBy(t => t.Definition.Spec.BatchSize).OrderBy(g => g.Key)
                .Select(g => (Batch: g.Key, Least: g.Min(t => t.PeakMemoryBytes))).ToList();
            Assert.Equal([32, 64, 128], least.Select(m => m.Batch));
            Assert.True(least[0].Least < least[1].Least && least[1].Least < least[2].Least, $"{id}: least peak memory by batch size {string.Join(", ", least)}");
            var case3 = trials.Single(t => t.Definition.Name == "CASE3").PeakMemoryBytes;
            Assert.All(trials.Where(t => t.Definition.Spec.BatchSize < 128), t => Assert.True(t.PeakMemoryBytes < case3, $"{id}: {t.Definition.Name} {t.PeakMemoryBytes} bytes, CASE3 {case3}"));
        }

        // The run ends with its report: the paper's claims checked on these numbers.
        var report = Path.Combine(DataDir, "paper-a", "report");
        Assert.Matches(@"(?i)claim", File.ReadAllText(Path.Combine(report, "report.md")));
        Assert.Equal(10, File.ReadAllLines(Path.Combine(report, "trials.csv")).Length);
        Assert.True(File.Exists(Path.Combine(report, "fig5-lr.png")));
        var unknown = SweepProcess.Run("report", "nope", "--data-dir", DataDir);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no sweep 'nope'", unknown.Stderr);
    }

    [Fact]
    public async Task A_machine_whose_every_slot_fails_its_self_test_halts_the_sweep_with_the_reason_and_resume_runs_it_once_fixed()
    {
        var spec = WriteLeNetSpec();

        var (exit, stdout, stderr) = SweepProcess.RunWith(Fault("conv2"), "run", spec, "--sweep-id", "halted", "--data-dir", DataDir, "--workers", "2");

        Assert.Equal(1, exit);
        Assert.Contains("halted: no healthy worker slot: none of the 2 takes trials", stdout);
        Assert.Contains("training conv2 output off by", stdout);
        Assert.Contains("continue with: sweep resume halted --data-dir", stdout);
        Assert.DoesNotContain("Exception", stdout + stderr);
        var events = await Events("halted");
        Assert.Empty(events.OfType<TrialStarted>());
        Assert.Equal(2, events.OfType<SlotChecked>().Count(e => !e.Health.Healthy));
        var status = JsonDocument.Parse(SweepProcess.Run("status", "halted", "--data-dir", DataDir, "--json").Stdout).RootElement;
        Assert.Equal("Interrupted", status.GetProperty("state").GetString());
        Assert.StartsWith("no healthy worker slot", status.GetProperty("interruptReason").GetString());
        Assert.All(status.GetProperty("slots").EnumerateArray(), slot => Assert.False(slot.GetProperty("healthy").GetBoolean()));

        var resumed = SweepProcess.Run("resume", "halted", "--data-dir", DataDir, "--workers", "2");

        Assert.True(resumed.ExitCode == 0, resumed.Stdout + resumed.Stderr);
        var after = JsonDocument.Parse(SweepProcess.Run("status", "halted", "--data-dir", DataDir, "--json").Stdout).RootElement;
        Assert.Equal("Completed", after.GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Null, after.GetProperty("interruptReason").ValueKind);
        Assert.All(after.GetProperty("slots").EnumerateArray(), slot => Assert.True(slot.GetProperty("healthy").GetBoolean()));
    }

    [Fact]
    public async Task A_slot_that_fails_its_self_test_takes_no_trial_and_status_says_why()
    {
        var spec = WriteLeNetSpec();

        var (exit, stdout, stderr) = SweepProcess.RunWith(Fault("ip1@cpu-2"), "run", spec, "--sweep-id", "one-sick", "--data-dir", DataDir, "--workers", "2");

        Assert.True(exit == 0, stdout + stderr);
        var events = await Events("one-sick");
        var sick = events.OfType<SlotChecked>().Single(e => !e.Health.Healthy).Slot.WorkerId;
        Assert.EndsWith("/cpu-2", sick);
        Assert.All(events.OfType<TrialStarted>(), e => Assert.NotEqual(sick, e.WorkerId));
        Assert.Equal(3, events.OfType<TrialCompleted>().Count());
        var text = SweepProcess.Run("status", "one-sick", "--data-dir", DataDir).Stdout;
        Assert.Contains($"slot {sick}: UNHEALTHY, takes no trials: self-test failed on cpu (1 thread): training ip1 output off by", text);
        Assert.Contains("healthy: self-test passed on cpu (1 thread): 31 layer checks against float64", text);
    }

    [Fact]
    public void Selftest_prints_every_layer_and_exits_0_1_or_2()
    {
        var (exit, stdout, stderr) = SweepProcess.Run("selftest", "--device", "cpu", "--threads", "1");
        Assert.True(exit == 0, stdout + stderr);
        foreach (var layer in new[] { "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2", "loss" }) Assert.Contains($" {layer} ", stdout);
        Assert.Contains("kernels: oneDNN off, NNPACK off", stdout);
        Assert.Contains("self-test passed on cpu (1 thread)", stdout);

        var json = JsonDocument.Parse(SweepProcess.Run("selftest", "--device", "cpu", "--json").Stdout).RootElement;
        Assert.True(json.GetProperty("passed").GetBoolean());
        Assert.Equal(31, json.GetProperty("checks").GetArrayLength());
        Assert.All(json.GetProperty("checks").EnumerateArray(), c => Assert.InRange(c.GetProperty("relativeError").GetDouble(), 0, 1e-5));

        var faulty = SweepProcess.RunWith(Fault("conv2"), "selftest", "--device", "cpu");
        Assert.Equal(1, faulty.ExitCode);
        Assert.Contains("FAILED", faulty.Stdout);
        Assert.Contains("self-test failed on cpu", faulty.Stdout);
        Assert.Contains("[injected on purpose by SWEEP_SELFTEST_FAULT=conv2]", faulty.Stdout);

        // A drill variable with a typo is bad input too: refused before anything runs or is persisted.
        var typo = SweepProcess.RunWith(Fault("conv9"), "selftest");
        Assert.Equal((2, ""), (typo.ExitCode, typo.Stdout));
        Assert.StartsWith("sweep: SWEEP_SELFTEST_FAULT=conv9: 'conv9' is nothing the self-test checks", typo.Stderr);
        var typoRun = SweepProcess.RunWith(Fault("conv9@cpu-2"), "run", WriteLeNetSpec(), "--data-dir", DataDir);
        Assert.Equal(2, typoRun.ExitCode);
        Assert.Single(typoRun.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(File.Exists(Path.Combine(DataDir, "journal.db")), typoRun.Stdout);

        foreach (var bad in new[] { new[] { "--device", "cuda:7" }, ["--device", "tpu"], ["--threads", "0"], ["--threads", "99999"], ["--threads", "abc"] })
        {
            var refused = SweepProcess.Run(["selftest", .. bad]);
            Assert.Equal(2, refused.ExitCode);
            Assert.Single(refused.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal("", refused.Stdout);
        }
    }

    [Fact]
    public void Train_refuses_to_train_on_a_device_that_fails_its_self_test()
    {
        var (exit, stdout, stderr) = SweepProcess.RunWith(Fault("pool2"), "train", "--max-iter", "20", "--threads", "1");

        Assert.Equal(1, exit);
        Assert.Equal("", stdout);
        Assert.StartsWith("sweep: self-test failed on cpu (1 thread): training pool2 output off by", stderr);
        Assert.Contains("nothing was trained", stderr);
        Assert.Contains("[injected on purpose by SWEEP_SELFTEST_FAULT=pool2]", stderr);
    }

    /// <summary>Three short LeNet trials.</summary>
    private string WriteLeNetSpec()
    {
        var path = Path.Combine(temp, "lenet.conf");
        File.WriteAllText(path, """
            sweep {
              name = numbers
              model = lenet
              max-iter = 20
              test-interval = 10
              grid { batch-size = [16, 32, 64], base-lr = [0.01] }
            }
            """);
        return path;
    }

    private async Task<IReadOnlyList<ISweepEvent>> Events(string sweepId)
    {
        return await SweepJournal.EventsAsync(new JournalSettings(DataDir), sweepId);
    }
}
