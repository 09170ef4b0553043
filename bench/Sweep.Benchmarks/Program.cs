using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using Sweep.GpuWorker.Workers;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Specs;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

// dotnet run -c Release --project bench/Sweep.Benchmarks -- NAME [--option value]... [--json]
// Each benchmark prints a readable table, or with --json one JSON object with its figures.
var arguments = Arguments.Parse(args);
try
{
    var figures = arguments.Name switch
    {
        "overhead" => await Benchmarks.OverheadAsync(arguments.Int("trials", 10_000), arguments.Int("slots", 16), arguments.Int("iterations", 5), arguments.Double("iteration-ms", 2)),
        "expansion" => Benchmarks.Expansion(arguments.Int("cells", 1_000_000)),
        _ => throw new ArgumentException($"unknown benchmark '{arguments.Name}': overhead, expansion"),
    };
    if (arguments.Json) Console.WriteLine(JsonSerializer.Serialize(figures));
    else foreach (var (key, value) in figures) Console.WriteLine($"{key,-36} {Format(value)}");
    return 0;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"bench: {e.Message}");
    return 2;
}

static string Format(object value) => value switch
{
    double d => d.ToString("0.###", CultureInfo.InvariantCulture),
    _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
};

internal sealed record Arguments(string Name, Dictionary<string, string> Options, bool Json)
{
    public static Arguments Parse(string[] args)
    {
        if (args.Length == 0) throw new ArgumentException("usage: NAME [--option value]... [--json]");
        var options = new Dictionary<string, string>();
        bool json = false;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--json") json = true;
            else if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length) options[args[i][2..]] = args[++i];
            else throw new ArgumentException($"unexpected argument '{args[i]}'");
        }
        return new Arguments(args[0], options, json);
    }

    public int Int(string key, int fallback) => Options.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public double Double(string key, double fallback) => Options.TryGetValue(key, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
}

internal static class Benchmarks
{
    /// <summary>
    /// N synthetic trials of known sleep over S worker slots in one process, through the real
    /// coordinator, worker actors and SQLite journal: makespan against the ideal (total work / slots).
    /// </summary>
    public static async Task<Dictionary<string, object>> OverheadAsync(int trials, int slots, int iterations, double iterationMs)
    {
        var dataDir = Directory.CreateTempSubdirectory("sweep-bench-overhead-").FullName;
        try
        {
            var journal = new JournalSettings(dataDir);
            var definition = SyntheticSweep("overhead", trials, iterations, iterationMs);
            await using var sweepSystem = await SweepSystem.StartAsync(journal);
            var system = sweepSystem.System;
            var coordinator = system.ActorOf(SweepCoordinator.Props("overhead", new CoordinatorSettings(journal.CheckpointDirectory)));
            var finished = new TaskCompletionSource<SweepSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
            system.ActorOf(Props.Create(() => new FinishWaiter(coordinator, finished)));
            ResetPeakMemory();
            var clock = Stopwatch.StartNew();
            await coordinator.Ask<SweepAccepted>(new StartSweep(definition), TimeSpan.FromMinutes(5));
            for (int i = 0; i < slots; i++)
                system.ActorOf(TrialWorker.Props(new WorkerSlot($"slot-{i + 1}", "bench", "cpu", 1), coordinator));
            var final = await finished.Task;
            clock.Stop();

            double makespan = clock.Elapsed.TotalSeconds;
            double ideal = trials * iterations * iterationMs / 1000.0 / slots;
            // Events: SweepStarted, per trial TrialStarted + a progress at 0 and at the end + TrialCompleted, SweepCompleted.
            int events = 2 + trials * (iterations > 0 ? 4 : 3);
            return new Dictionary<string, object>
            {
                ["benchmark"] = "overhead",
                ["trials"] = trials,
                ["slots"] = slots,
                ["iterations_per_trial"] = iterations,
                ["iteration_ms"] = iterationMs,
                ["completed"] = final.Trials.Count(t => t.State == Sweep.Protocol.Events.TrialState.Completed),
                ["makespan_s"] = makespan,
                ["ideal_s"] = ideal,
                // Two readings of "per trial": the time the sweep took beyond the ideal, per trial,
                // and the same times the slots (Ray Tune's (715 s − 625 s) × 16 / 10,000 ≈ 144 ms).
                ["overhead_per_trial_ms"] = (makespan - ideal) * 1000.0 / trials,
                ["overhead_per_trial_slot_ms"] = (makespan - ideal) * 1000.0 * slots / trials,
                ["events_persisted_per_s"] = events / makespan,
                ["process_peak_memory_mb"] = PeakMemoryBytes() / 1048576.0,
            };
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dataDir, recursive: true);
        }
    }

    /// <summary>Expanding and validating a grid of <paramref name="cells"/> cells, refused by default and allowed with the limit raised.</summary>
    public static Dictionary<string, object> Expansion(int cells)
    {
        int side = (int)Math.Round(Math.Sqrt(cells));
        var batches = string.Join(", ", Enumerable.Range(1, side));
        var rates = string.Join(", ", Enumerable.Range(1, side).Select(i => (i * 1e-5).ToString("R", CultureInfo.InvariantCulture)));
        string Spec(int limit) => $$"""
            sweep {
              name = expansion
              model = synthetic
              max-trials = {{limit}}
              grid {
                batch-size = [{{batches}}]
                base-lr = [{{rates}}]
              }
            }
            """;
        var refuse = Stopwatch.StartNew();
        string refusal;
        try
        {
            SweepSpecLoader.Parse(Spec(SweepSpecLoader.DefaultMaxTrials), "expansion.conf", Environment.CurrentDirectory, []);
            refusal = "not refused";
        }
        catch (Sweep.Protocol.InvalidInputException e)
        {
            refusal = e.Message;
        }
        refuse.Stop();

        GC.Collect();
        long before = GC.GetTotalMemory(forceFullCollection: true);
        ResetPeakMemory();
        var expand = Stopwatch.StartNew();
        var definition = SweepSpecLoader.Parse(Spec(side * side), "expansion.conf", Environment.CurrentDirectory, []);
        expand.Stop();
        long after = GC.GetTotalMemory(forceFullCollection: false);
        return new Dictionary<string, object>
        {
            ["benchmark"] = "expansion",
            ["cells"] = side * side,
            ["refused_by_default_ms"] = refuse.Elapsed.TotalMilliseconds,
            ["refusal"] = refusal,
            ["expanded_trials"] = definition.Trials.Count,
            ["expand_and_validate_s"] = expand.Elapsed.TotalSeconds,
            ["managed_memory_held_mb"] = (after - before) / 1048576.0,
            ["process_peak_memory_mb"] = PeakMemoryBytes() / 1048576.0,
        };
    }

    private static SweepDefinition SyntheticSweep(string name, int trials, int iterations, double iterationMs) => new(
        name,
        "benchmark",
        ModelKind.Synthetic,
        Enumerable.Range(0, trials)
            .Select(i => new TrialDefinition($"t{i:D6}", $"t{i}", new TrialSpec(32, 64, 0.01, iterations, iterations, i, new SolverSpec(), new DatasetSpec("unused"))))
            .ToList(),
        new DivergencePolicy(),
        new RetryPolicy(),
        OutOfMemoryPolicy.Fail,
        -1,
        new SyntheticSpec(iterationMs));

    private static void ResetPeakMemory()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException)
        {
        }
    }

    private static long PeakMemoryBytes()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>Waits for the sweep's end.</summary>
    private sealed class FinishWaiter : ReceiveActor
    {
        public FinishWaiter(IActorRef coordinator, TaskCompletionSource<SweepSnapshot> finished)
        {
            Receive<SweepFinished>(done => finished.TrySetResult(done.Snapshot));
            ReceiveAny(_ => { });
            coordinator.Tell(new SubscribeToSweep());
        }
    }
}
