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
using Sweep.Benchmarks;
using static Sweep.Benchmarks.Threads;

// dotnet run -c Release --project bench/Sweep.Benchmarks -- NAME [--option value]... [--json]
// Each benchmark prints a readable table, or with --json one JSON object with its figures. Every
// benchmark first checks that what it timed computed what it should (the same trial alone, the
// expected number of trials); if not, it reports that instead of a time and exits with 1.
var arguments = Arguments.Parse(args);
try
{
    Benchmarks.SlotsInThreads = arguments.Options.TryGetValue("slots-in", out var slotsIn) switch
    {
        false => false,
        true when slotsIn == "processes" => false,
        true when slotsIn == "threads" => true,
        _ => throw new ArgumentException($"--slots-in {slotsIn}: expected processes (a worker process per slot, as `sweep` runs them) or threads (the design before 2026-12-01: every slot a thread of one process)"),
    };
    var figures = arguments.Name switch
    {
        "overhead" => await Benchmarks.OverheadAsync(arguments.Int("trials", 10_000), arguments.Int("slots", 16), arguments.Int("iterations", 5), arguments.Double("iteration-ms", 2)),
        "expansion" => Benchmarks.Expansion(arguments.Int("cells", 1_000_000)),
        "trainer" => await Benchmarks.TrainerAsync(arguments.Int("max-iter", 1000), arguments.Int("threads", Environment.ProcessorCount), arguments.Int("repeats", 7)),
        "recovery" => await Benchmarks.RecoveryAsync(arguments.Int("trials", 10_000)),
        "packing" => await Benchmarks.PackingAsync(arguments.Int("max-iter", 1000)),
        "kernels" => Benchmarks.Kernels(arguments.Int("max-iter", 300), arguments.Int("threads", 1), arguments.Int("repeats", 5)),
        "early-stopping" => await Benchmarks.EarlyStoppingAsync(arguments.Int("max-iter", 1000), arguments.Int("slots", Environment.ProcessorCount)),
        "stopping-overhead" => await Benchmarks.StoppingOverheadAsync(arguments.Int("trials", 1000), arguments.Int("slots", 16), arguments.Double("iteration-ms", 0.05)),
        _ => throw new ArgumentException($"unknown benchmark '{arguments.Name}': overhead, expansion, trainer, recovery, packing, kernels, early-stopping, stopping-overhead"),
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
catch (VerificationException e)
{
    Console.Error.WriteLine($"bench: {arguments.Name} did not compute what it timed, so no time is reported: {e.Message}");
    return 1;
}

static string Format(object value) => value switch
{
    double d when d != 0 && Math.Abs(d) < 0.001 => d.ToString("0.0e+00", CultureInfo.InvariantCulture),
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
    /// Whether sweeps run their slots as threads of this process (the design before 2026-12-01, for
    /// side-by-side figures: `--slots-in threads`) rather than in a worker process each, as `sweep` does.
    /// </summary>
    public static bool SlotsInThreads { get; set; }

    /// <summary>
    /// N synthetic trials of known sleep over S worker slots in one process, through the real
    /// coordinator, worker actors and SQLite journal: makespan against the ideal (total work / slots).
    /// </summary>
    public static async Task<Dictionary<string, object>> OverheadAsync(int trials, int slots, int iterations, double iterationMs)
    {
        var run = await RunSweepAsync(SyntheticSweep("overhead", trials, iterations, iterationMs), slots, threads: 1);
        Verify.That(run.Final.Trials.All(t => t.State == TrialState.Completed && t.Iteration == iterations), $"every one of the {trials} trials completed its {iterations} iterations");
        double makespan = run.Seconds;
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
            ["completed"] = run.Final.Trials.Count(t => t.State == TrialState.Completed),
            ["makespan_s"] = makespan,
            ["ideal_s"] = ideal,
            // Two readings of "per trial": the time the sweep took beyond the ideal, per trial,
            // and the same times the slots (Ray Tune's (715 s − 625 s) × 16 / 10,000 ≈ 144 ms).
            ["overhead_per_trial_ms"] = (makespan - ideal) * 1000.0 / trials,
            ["overhead_per_trial_slot_ms"] = (makespan - ideal) * 1000.0 * slots / trials,
            ["events_persisted_per_s"] = events / makespan,
            ["process_peak_memory_mb"] = run.PeakMemoryBytes / 1048576.0,
            ["managed_memory_live_after_mb"] = run.LiveManagedBytes / 1048576.0,
            ["startup_s"] = run.StartupSeconds,
        };
    }

    /// <summary>
    /// The paper's CASE1 through the whole stack (coordinator, worker actor, SQLite journal) against
    /// a bare TorchSharp loop of the same network, batch, threads and data, and against the trainer
    /// alone (no actors, no journal), alternated in one run after a discarded warm-up round.
    /// </summary>
    public static async Task<Dictionary<string, object>> TrainerAsync(int maxIter, int threads, int repeats)
    {
        var dataset = new DatasetSpec(Sweep.GpuWorker.Data.MnistData.EmbeddedPath);
        var data = Sweep.GpuWorker.Data.MnistData.Load(dataset);
        var spec = TrialSpec.PaperCase1(dataset) with { MaxIter = maxIter };
        var definition = new SweepDefinition("trainer", "benchmark", ModelKind.Lenet, [new TrialDefinition("case1", "CASE1", spec)],
            new DivergencePolicy(), new RetryPolicy(), OutOfMemoryPolicy.Fail, -1, new SyntheticSpec());
        var checkpoint = Path.Combine(Directory.CreateTempSubdirectory("sweep-bench-trainer-").FullName, "case1.ckpt");

        // What every variant must compute: the trainer alone, untimed, on a thread of its own.
        var reference = OnOwnThread(() => Sweep.GpuWorker.Training.Trainer.Run(spec, data, new Sweep.GpuWorker.Training.TrainingOptions(threads))).Metrics;
        Verify.That(reference.Count == maxIter / spec.TestInterval + 1 + (maxIter % spec.TestInterval == 0 ? 0 : 1) && reference.All(m => double.IsFinite(m.TrainLoss) && double.IsFinite(m.TestLoss)),
            $"CASE1 alone reports finite metrics at every test point ({string.Join(", ", reference.Select(m => m.Iteration))})");
        var expectedTests = reference.Select(m => (m.Iteration, m.TestLoss, m.TestAccuracy)).ToList();

        // Every variant trains on a thread of its own, as the worker does: LibTorch's OpenMP keeps a
        // thread team per calling thread, and a second team left alive by another thread (the main
        // one, say) oversubscribes the cores and makes libgomp stop spinning: 20% slower here.
        double Bare() => OnOwnThread(() =>
        {
            var (seconds, tests) = BareLoop.Run(spec, data, threads);
            Verify.Same(expectedTests, tests, "the bare loop's test points");
            return seconds;
        });
        double TrainerAlone() => OnOwnThread(() =>
        {
            var clock = Stopwatch.StartNew();
            var result = Sweep.GpuWorker.Training.Trainer.Run(spec, data, new Sweep.GpuWorker.Training.TrainingOptions(threads, CheckpointPath: checkpoint));
            double seconds = clock.Elapsed.TotalSeconds;
            Verify.Same(Verify.Computed(reference), Verify.Computed(result.Metrics), "the trainer's test points");
            return seconds;
        });
        // A fresh actor system and journal for every stack round, timed from StartSweep to SweepFinished:
        // its start-up is reported apart, while whatever it does in the background (the scheduler's
        // ticks, compilation after start-up) still competes with the training, as it does in `sweep run`.
        // (Keeping one system up through all rounds would slow the bare loop by the same and hide it.)
        var startup = new List<double>();
        async Task<double> Stack()
        {
            var run = await RunSweepAsync(definition, slots: 1, threads);
            Verify.Same(Verify.Computed(reference), Verify.Computed(run.Progress["case1"]), "the whole stack's journalled test points");
            startup.Add(run.StartupSeconds);
            return run.Seconds;
        }

        // Warm-up, discarded: JIT and tiered compilation, and the worker's once-per-process dataset load.
        Bare();
        TrainerAlone();
        await Stack();

        var bare = new List<double>();
        var alone = new List<double>();
        var stack = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            bare.Add(Bare());
            alone.Add(TrainerAlone());
            stack.Add(await Stack());
            Console.Error.WriteLine($"round {r + 1}/{repeats}: bare {bare[^1]:0.00} s, trainer {alone[^1]:0.00} s, stack {stack[^1]:0.00} s");
        }
        Directory.Delete(Path.GetDirectoryName(checkpoint)!, recursive: true);
        double bareMedian = Median(bare), aloneMedian = Median(alone), stackMedian = Median(stack);
        return new Dictionary<string, object>
        {
            ["benchmark"] = "trainer",
            ["max_iter"] = maxIter,
            ["threads"] = threads,
            ["repeats"] = repeats,
            ["stack_startup_median_s"] = Median(startup.Skip(1).ToList()),
            ["bare_loop_s"] = Join(bare),
            ["trainer_alone_s"] = Join(alone),
            ["whole_stack_s"] = Join(stack),
            ["bare_loop_median_s"] = bareMedian,
            ["trainer_alone_median_s"] = aloneMedian,
            ["whole_stack_median_s"] = stackMedian,
            ["trainer_alone_ratio"] = aloneMedian / bareMedian,
            ["time_ratio"] = stackMedian / bareMedian,
            ["verified"] = $"every round's {reference.Count} test points equal CASE1 alone",
            ["case1_gflop"] = LeNetArithmetic.Flop(spec) / 1e9,
            ["achieved_gflop_per_s"] = LeNetArithmetic.Flop(spec) / 1e9 / aloneMedian,
            ["peak_gflop_per_s"] = LeNetArithmetic.PeakFlopPerSecond(threads) / 1e9,
            ["peak_assumes"] = LeNetArithmetic.PeakAssumptions(threads),
            ["arithmetic_limit_s"] = LeNetArithmetic.Flop(spec) / LeNetArithmetic.PeakFlopPerSecond(threads),
        };

        static string Join(List<double> seconds) => string.Join(" ", seconds.Select(b => b.ToString("0.00", CultureInfo.InvariantCulture)));
    }

    /// <summary>
    /// LeNet's CPU paths: LibTorch's default (oneDNN, NCHW: what this project ran before, wrong on
    /// AMD EPYC), LibTorch's own im2col + MKL GEMM kernels in NCHW, and the chosen path (those kernels,
    /// channels-last from conv1's output on: <see cref="Sweep.GpuWorker.Training.TorchKernels"/>,
    /// <see cref="Sweep.GpuWorker.Training.LeNet"/>). Each is checked layer by layer against float64
    /// on real MNIST batches (training batches of 16, 64 and 128, a test batch of 256), twice, then
    /// CASE1 is timed on each, alternated, every timed run checked against that path's untimed run.
    /// What the kernel choice rests on, measurable on any machine.
    /// </summary>
    public static Dictionary<string, object> Kernels(int maxIter, int threads, int repeats)
    {
        var dataset = new DatasetSpec(Sweep.GpuWorker.Data.MnistData.EmbeddedPath);
        var data = Sweep.GpuWorker.Data.MnistData.Load(dataset);
        var spec = TrialSpec.PaperCase1(dataset) with { MaxIter = maxIter };
        (string Name, bool OneDnn, bool ChannelsLast)[] paths = [("onednn_nchw", true, false), ("native_nchw", false, false), ("chosen", false, true)];
        var figures = new Dictionary<string, object> { ["benchmark"] = "kernels", ["max_iter"] = maxIter, ["threads"] = threads, ["repeats"] = repeats };
        (string, float[], int[]) Batch(string name, Sweep.GpuWorker.Data.MnistSplit split, long[] indices)
        {
            var (pixels, labels) = Sweep.GpuWorker.SelfTest.KnownAnswerTest.Batch(split, indices);
            return (name, pixels, labels);
        }
        var batches = new[]
        {
            Batch("train16", data.Train, new Sweep.GpuWorker.Training.EpochSampler(data.Train.Count, 11).Next(16)),
            Batch("train64", data.Train, new Sweep.GpuWorker.Training.EpochSampler(data.Train.Count, 13).Next(64)),
            Batch("train128", data.Train, new Sweep.GpuWorker.Training.EpochSampler(data.Train.Count, 14).Next(128)),
            Batch("test256", data.Test, Enumerable.Range(0, 256).Select(i => (long)i).ToArray()),
        };
        var references = new Dictionary<string, List<(int, double, double)>>();
        var seconds = paths.ToDictionary(p => p.Name, _ => new List<double>());
        try
        {
            foreach (var (name, oneDnn, channelsLast) in paths)
            {
                OnOwnThread(() =>
                {
                    Sweep.GpuWorker.Training.TorchKernels.SetOneDnnForMeasurement(oneDnn);
                    TorchSharp.torch.set_num_threads(threads);
                    var checks = batches.SelectMany(b => Sweep.GpuWorker.SelfTest.KnownAnswerTest.Compare(TorchSharp.torch.CPU, b.Item2, b.Item3, channelsLast: channelsLast).Select(c => (Batch: b.Item1, Check: c))).ToList();
                    var again = batches.SelectMany(b => Sweep.GpuWorker.SelfTest.KnownAnswerTest.Compare(TorchSharp.torch.CPU, b.Item2, b.Item3, channelsLast: channelsLast)).ToList();
                    var worst = checks.MaxBy(c => c.Check.RelativeError);
                    figures[$"{name}_worst_relative_error"] = worst.Check.RelativeError;
                    figures[$"{name}_worst_check"] = $"{worst.Batch} {worst.Check.Pass} {worst.Check.Layer} {worst.Check.Quantity}";
                    figures[$"{name}_conv2_worst_relative_error"] = checks.Where(c => c.Check.Layer == "conv2").Max(c => c.Check.RelativeError);
                    figures[$"{name}_within_1e-5"] = checks.All(c => c.Check.RelativeError <= 1e-5);
                    figures[$"{name}_repeatable"] = checks.Select(c => c.Check.RelativeError).SequenceEqual(again.Select(c => c.RelativeError));
                    // What every timed run of this path must compute: an untimed run first.
                    references[name] = BareLoop.Run(spec, data, threads, channelsLast).Tests;
                    return 0;
                });
            }
            Verify.Same(
                references["chosen"],
                OnOwnThread(() => Sweep.GpuWorker.Training.Trainer.Run(spec, data, new Sweep.GpuWorker.Training.TrainingOptions(threads))).Metrics.Select(m => (m.Iteration, m.TestLoss, m.TestAccuracy)).ToList(),
                "the chosen path's bare loop and the trainer");
            for (int r = 0; r < repeats; r++)
            {
                foreach (var (name, oneDnn, channelsLast) in paths)
                {
                    seconds[name].Add(OnOwnThread(() =>
                    {
                        Sweep.GpuWorker.Training.TorchKernels.SetOneDnnForMeasurement(oneDnn);
                        var (time, tests) = BareLoop.Run(spec, data, threads, channelsLast);
                        Verify.Same(references[name], tests, $"round {r + 1} of the {name} path's test points");
                        return time;
                    }));
                }
                Console.Error.WriteLine($"round {r + 1}/{repeats}: " + string.Join(", ", paths.Select(p => $"{p.Name} {seconds[p.Name][^1]:0.00} s")));
            }
        }
        finally
        {
            OnOwnThread(() =>
            {
                Sweep.GpuWorker.Training.TorchKernels.SetOneDnnForMeasurement(false);
                return 0;
            });
        }
        foreach (var (name, _, _) in paths)
        {
            figures[$"{name}_s"] = string.Join(" ", seconds[name].Select(x => x.ToString("0.00", CultureInfo.InvariantCulture)));
            figures[$"{name}_median_s"] = Median(seconds[name]);
        }
        figures["chosen_over_onednn_nchw"] = Median(seconds["chosen"]) / Median(seconds["onednn_nchw"]);
        figures["native_nchw_over_onednn_nchw"] = Median(seconds["native_nchw"]) / Median(seconds["onednn_nchw"]);
        return figures;
    }

    /// <summary>
    /// A journal holding a sweep of <paramref name="trials"/> synthetic trials stopped half-way; then, in
    /// a fresh actor system, the time from starting to resume until the state is restored and until
    /// the first new trial is handed to a worker.
    /// </summary>
    public static async Task<Dictionary<string, object>> RecoveryAsync(int trials)
    {
        var dataDir = Directory.CreateTempSubdirectory("sweep-bench-recovery-").FullName;
        try
        {
            var journal = new JournalSettings(dataDir);
            await using (var first = await SweepSystem.StartAsync(journal))
            {
                var coordinator = first.System.ActorOf(SweepCoordinator.Props("recovery", new CoordinatorSettings(journal.CheckpointDirectory)));
                var half = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                first.System.ActorOf(Props.Create(() => new CompletionCounter(coordinator, trials / 2, half)));
                await coordinator.Ask<SweepAccepted>(new StartSweep(SyntheticSweep("recovery", trials, 1, 0)), TimeSpan.FromMinutes(5));
                for (int i = 0; i < 16; i++) first.System.ActorOf(TrialWorker.Props(new WorkerSlot($"slot-{i + 1}", "bench", "cpu", 1), coordinator));
                await half.Task;
                await coordinator.Ask<SweepStopped>(new StopSweep(), TimeSpan.FromMinutes(5));
            }
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

            double systemStarted, restored, firstDispatch;
            int remaining;
            var clock = Stopwatch.StartNew();
            await using (var second = await SweepSystem.StartAsync(journal))
            {
                systemStarted = clock.Elapsed.TotalSeconds;
                var resumed = second.System.ActorOf(SweepCoordinator.Props("recovery", new CoordinatorSettings(journal.CheckpointDirectory)));
                remaining = (await resumed.Ask<SweepAccepted>(new ResumeSweep(), TimeSpan.FromMinutes(5))).Remaining;
                restored = clock.Elapsed.TotalSeconds;
                Verify.That(remaining > 0 && remaining <= trials - trials / 2, $"the resumed sweep has the {trials - trials / 2} or fewer unfinished trials it was stopped with (got {remaining})");
                var firstRun = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                second.System.ActorOf(Props.Create(() => new FirstRunProbe(resumed, firstRun)));
                await firstRun.Task;
                firstDispatch = clock.Elapsed.TotalSeconds;
            }
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            // The cold resume is timed on a quiet machine: this process's own clean-up (the two actor
            // systems' garbage, the JIT's background tiering) must not share the two cores with it.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            await Task.Delay(TimeSpan.FromSeconds(3));
            double cold = await ResumeProcessToFirstStartAsync(dataDir, "recovery");
            return new Dictionary<string, object>
            {
                ["benchmark"] = "recovery",
                ["trials"] = trials,
                ["remaining"] = remaining,
                ["actor_system_started_s"] = systemStarted,
                ["state_restored_s"] = restored,
                ["first_new_trial_dispatched_s"] = firstDispatch,
                ["sweep_resume_process_to_first_trial_started_s"] = cold,
            };
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dataDir, recursive: true);
        }
    }

    /// <summary>
    /// The same from the command line, cold: from starting a `sweep resume` process until it prints
    /// that a trial started (the process is then killed; the journal is made for that).
    /// </summary>
    private static async Task<double> ResumeProcessToFirstStartAsync(string dataDirectory, string sweepId)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "sweep"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            ArgumentList = { "resume", sweepId, "--data-dir", dataDirectory, "--workers", "1" },
        };
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("sweep resume did not start");
        _ = process.StandardError.ReadToEndAsync();
        try
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.Contains(": started attempt", StringComparison.Ordinal)) return clock.Elapsed.TotalSeconds;
            }
            throw new InvalidOperationException($"sweep resume ended (exit code {process.ExitCode}) before any trial started");
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    /// <summary>The paper preset with one slot using every core, and with one slot per core (one thread each).</summary>
    public static async Task<Dictionary<string, object>> PackingAsync(int maxIter)
    {
        var preset = Path.Combine(AppContext.BaseDirectory, "hocon", "sweeps", "paper-lenet.conf");
        var definition = SweepSpecLoader.Load(preset, [$"sweep.max-iter={maxIter}"]);
        int cores = Environment.ProcessorCount;
        var oneWide = await RunSweepAsync(definition, slots: 1, threads: cores);
        var manyNarrow = await RunSweepAsync(definition, slots: cores, threads: 1);
        // Each layout's trials against the same trials alone at that thread count (untimed).
        Verify.SoloIdentical(definition, oneWide, threads: cores, "1 slot");
        Verify.SoloIdentical(definition, manyNarrow, threads: 1, $"{cores} slots");
        return new Dictionary<string, object>
        {
            ["benchmark"] = "packing",
            ["max_iter"] = maxIter,
            ["cores"] = cores,
            ["verified"] = "every trial's test points in both layouts equal the trial alone at that thread count",
            ["outcomes"] = string.Join(" ", manyNarrow.Final.Trials.Select(t => $"{t.Definition.Name}:{t.State}")),
            [$"makespan_1_slot_x_{cores}_threads_s"] = oneWide.Seconds,
            [$"makespan_{cores}_slots_x_1_thread_s"] = manyNarrow.Seconds,
            ["faster_layout"] = oneWide.Seconds <= manyNarrow.Seconds ? $"1 slot x {cores} threads" : $"{cores} slots x 1 thread",
        };
    }

    /// <summary>
    /// A real LeNet sweep of 25 configurations (batch 16–256 × lr 0.0025–0.04: the diagonals are the
    /// couplings k = 1 and k = −1 around batch 64, lr 0.01), once to max-iter, once with ASHA (η = 3,
    /// grace 100) in iterations, once with ASHA in images (η = 3, grace 100 × 16 images) and once with
    /// the median rule (grace 200, 3 trials). Verified first: every trial's
    /// test points under a policy equal the same trial's in the full sweep, up to where it stopped.
    /// Reported: the best final test accuracy of the completed trials, the iterations and seconds
    /// and images (iterations × batch) trained, the makespan. Target: ASHA within 0.5 points of the
    /// full sweep's best with at most a third of its compute (both its seconds and its images).
    /// </summary>
    public static async Task<Dictionary<string, object>> EarlyStoppingAsync(int maxIter, int slots)
    {
        string grid = "grid { batch-size = [16, 32, 64, 128, 256], base-lr = [0.0025, 0.005, 0.01, 0.02, 0.04] }";
        SweepDefinition Spec(string stopping) => SweepSpecLoader.Parse(
            $"sweep {{ name = stopping-bench, model = lenet, max-iter = {maxIter}, test-interval = 100, {grid} {stopping} }}",
            "early-stopping-bench", AppContext.BaseDirectory, [], TextWriter.Null);
        var full = await RunSweepAsync(Spec(""), slots, threads: 1);
        var runs = new List<(string Name, SweepRunResult Run)> { ("full", full) };
        runs.Add(("asha", await RunSweepAsync(Spec("early-stopping { policy = asha, grace-period = 100, reduction-factor = 3 }"), slots, threads: 1)));
        runs.Add(("asha_images", await RunSweepAsync(Spec("early-stopping { policy = asha, resource = images, reduction-factor = 3 }"), slots, threads: 1)));
        runs.Add(("median", await RunSweepAsync(Spec("early-stopping { policy = median, grace-period = 200, min-trials = 3 }"), slots, threads: 1)));
        Verify.That(full.Final.Trials.All(t => t.State is TrialState.Completed or TrialState.Diverged), "every trial of the full sweep completed or diverged");
        foreach (var (name, run) in runs.Skip(1))
        {
            Verify.That(run.Final.Trials.All(t => t.State is TrialState.Completed or TrialState.Diverged or TrialState.Stopped), $"every trial of the {name} sweep completed, diverged or stopped");
            foreach (var (id, points) in run.Progress)
            {
                var alone = Verify.Computed(full.Progress[id]);
                Verify.Same(alone.Take(points.Count).ToList(), Verify.Computed(points), $"{name}: trial {id}'s test points (the full sweep's, as far as it ran)");
            }
        }
        double Best(SweepRunResult run) => run.Final.Trials.Where(t => t.State == TrialState.Completed).Max(t => t.FinalTestAccuracy ?? 0);
        long Iterations(SweepRunResult run) => run.Final.Trials.Sum(t => (long)t.Iteration);
        // Images trained: iterations × batch size, the deterministic measure of compute (seconds depend on the machine's load).
        long Images(SweepRunResult run) => run.Final.Trials.Sum(t => (long)t.Iteration * t.Definition.Spec.BatchSize);
        double Seconds(SweepRunResult run) => run.Final.Trials.Sum(t => t.TimedSeconds);
        var figures = new Dictionary<string, object>
        {
            ["benchmark"] = "early-stopping",
            ["configurations"] = full.Final.Trials.Count,
            ["max_iter"] = maxIter,
            ["slots"] = slots,
            ["verified"] = "every trial's test points under each policy equal the full sweep's, up to where it stopped",
        };
        foreach (var (name, run) in runs)
        {
            figures[$"{name}_best_final_accuracy"] = Best(run);
            figures[$"{name}_stopped"] = run.Final.Trials.Count(t => t.State == TrialState.Stopped);
            figures[$"{name}_iterations"] = Iterations(run);
            figures[$"{name}_images"] = Images(run);
            figures[$"{name}_image_share"] = (double)Images(run) / Images(full);
            figures[$"{name}_trial_seconds"] = Seconds(run);
            figures[$"{name}_compute_share"] = Seconds(run) / Seconds(full);
            figures[$"{name}_makespan_s"] = run.Seconds;
        }
        foreach (var (name, run) in runs.Where(r => r.Name.StartsWith("asha", StringComparison.Ordinal)))
        {
            figures[$"{name}_points_behind_full"] = 100 * (Best(full) - Best(run));
            figures[$"{name}_target_met"] = Best(full) - Best(run) <= 0.005 && Seconds(run) <= Seconds(full) / 3 && Images(run) <= Images(full) / 3;
        }
        return figures;
    }

    /// <summary>
    /// 1,000 synthetic trials (5 test points each) with 16 slots, without a policy, with ASHA and with
    /// the median rule: the makespans side by side, and the policy's bookkeeping alone (the fold of
    /// every recorded test point, as the coordinator runs it) per trial. Verified: every trial ended,
    /// and each completed one's points equal the run without a policy.
    /// </summary>
    public static async Task<Dictionary<string, object>> StoppingOverheadAsync(int trials, int slots, double iterationMs)
    {
        SweepDefinition Sweep(EarlyStoppingSpec? stopping) => new(
            "stopping-overhead", "benchmark", ModelKind.Synthetic,
            Enumerable.Range(0, trials)
                .Select(i => new TrialDefinition($"t{i:D6}", $"t{i}", new TrialSpec(16 << (i % 4), 64, 0.001 + 0.0001 * (i % 97), 400, 100, i, new SolverSpec(), new DatasetSpec("unused"))))
                .ToList(),
            new DivergencePolicy(), new RetryPolicy(), OutOfMemoryPolicy.Fail, -1, new SyntheticSpec(iterationMs), EarlyStopping: stopping);
        var none = await RunSweepAsync(Sweep(null), slots, threads: 1);
        var figures = new Dictionary<string, object> { ["benchmark"] = "stopping-overhead", ["trials"] = trials, ["slots"] = slots, ["makespan_none_s"] = none.Seconds };
        foreach (var spec in new[] { new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, GracePeriod: 100), new EarlyStoppingSpec(EarlyStoppingPolicy.Median, GracePeriod: 100) })
        {
            string name = spec.Policy.ToString().ToLowerInvariant();
            var run = await RunSweepAsync(Sweep(spec), slots, threads: 1);
            Verify.That(run.Final.Trials.All(t => t.State is TrialState.Completed or TrialState.Stopped), $"every trial completed or stopped ({name})");
            Verify.That(run.Final.Trials.Any(t => t.State == TrialState.Stopped), $"some trial stopped ({name})");
            foreach (var t in run.Final.Trials.Where(t => t.State == TrialState.Completed))
                Verify.Same(Verify.Computed(none.Progress[t.Definition.Id]), Verify.Computed(run.Progress[t.Definition.Id]), $"{name}: completed trial {t.Definition.Name}'s test points");
            // The fold alone: every recorded point, in an order the coordinator could have seen them.
            var points = run.Progress.SelectMany(p => p.Value.Select(m => (p.Key, m))).OrderBy(x => x.m.Iteration).ThenBy(x => x.Key, StringComparer.Ordinal).ToList();
            var clock = Stopwatch.StartNew();
            var state = EarlyStopping.Start(spec);
            foreach (var (id, m) in points) state = state.Observe(id, m.Iteration, m.TestAccuracy, 400).State;
            double foldMs = clock.Elapsed.TotalMilliseconds;
            figures[$"makespan_{name}_s"] = run.Seconds;
            figures[$"{name}_stopped"] = run.Final.Trials.Count(t => t.State == TrialState.Stopped);
            figures[$"{name}_fold_ms_per_trial"] = foldMs / trials;
        }
        return figures;
    }

    /// <param name="Seconds">From handing the sweep to the coordinator until it finished.</param>
    /// <param name="StartupSeconds">Before that: the actor system started and the journal opened (once per `sweep` process).</param>
    /// <param name="LiveManagedBytes">The managed heap still reachable once the sweep finished, coordinator and workers still up (after a full collection).</param>
    /// <param name="Progress">Every trial's test points as the journal recorded them, by trial id.</param>
    internal sealed record SweepRunResult(double Seconds, double StartupSeconds, SweepSnapshot Final, long PeakMemoryBytes, long LiveManagedBytes, IReadOnlyDictionary<string, List<TrialMetrics>> Progress);

    /// <summary>Runs a whole sweep in a fresh actor system with a fresh SQLite journal.</summary>
    private static async Task<SweepRunResult> RunSweepAsync(SweepDefinition definition, int slots, int threads)
    {
        var dataDir = Directory.CreateTempSubdirectory("sweep-bench-").FullName;
        try
        {
            var startup = Stopwatch.StartNew();
            var journal = new JournalSettings(dataDir);
            await using var sweepSystem = await SweepSystem.StartAsync(journal);
            var system = sweepSystem.System;
            var coordinator = system.ActorOf(SweepCoordinator.Props("bench", new CoordinatorSettings(journal.CheckpointDirectory)));
            var finished = new TaskCompletionSource<SweepSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
            var progress = new Dictionary<string, List<TrialMetrics>>();
            system.ActorOf(Props.Create(() => new FinishWaiter(coordinator, finished, progress)));
            // The coordinator's answer means it has recovered, so the journal plugin is up.
            await coordinator.Ask<object>(new GetSweepState(), TimeSpan.FromMinutes(1));
            startup.Stop();
            ResetPeakMemory();
            var clock = Stopwatch.StartNew();
            await coordinator.Ask<SweepAccepted>(new StartSweep(definition), TimeSpan.FromMinutes(5));
            for (int i = 0; i < slots; i++)
            {
                var slot = new WorkerSlot($"slot-{i + 1}", "bench", "cpu", threads);
                system.ActorOf(SlotsInThreads ? TrialWorker.Props(slot, coordinator) : TrialWorker.InWorkerProcess(slot, coordinator, selfTest: false));
            }
            var final = await finished.Task;
            double seconds = clock.Elapsed.TotalSeconds;
            lock (progress) return new SweepRunResult(seconds, startup.Elapsed.TotalSeconds, final, PeakMemoryBytes(), GC.GetTotalMemory(forceFullCollection: true), progress.ToDictionary(p => p.Key, p => p.Value.ToList()));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
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
        Verify.That(refusal.Contains("max-trials", StringComparison.Ordinal) && definition.Trials.Count == side * side && definition.Trials.Select(t => t.Id).Distinct().Count() == side * side,
            $"the default refuses the grid naming max-trials, and the raised limit gives {side * side} trials with distinct ids");
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

    /// <summary>Completes once <paramref name="target"/> trials have completed.</summary>
    private sealed class CompletionCounter : ReceiveActor
    {
        public CompletionCounter(IActorRef coordinator, int target, TaskCompletionSource reached)
        {
            int completed = 0;
            Receive<TrialCompleted>(_ =>
            {
                if (++completed >= target) reached.TrySetResult();
            });
            ReceiveAny(_ => { });
            coordinator.Tell(new SubscribeToSweep());
        }
    }

    /// <summary>A worker stand-in that notes the first RunTrial it is given.</summary>
    private sealed class FirstRunProbe : ReceiveActor
    {
        public FirstRunProbe(IActorRef coordinator, TaskCompletionSource firstRun)
        {
            Receive<RunTrial>(_ => firstRun.TrySetResult());
            ReceiveAny(_ => { });
            coordinator.Tell(new RegisterWorker(new WorkerSlot("probe", "bench", "cpu", 1), null, "probe", SlotHealth.NotNeeded));
        }
    }

    /// <summary>Waits for the sweep's end, keeping every test point the coordinator persists (the last attempt's, when one is retried).</summary>
    private sealed class FinishWaiter : ReceiveActor
    {
        public FinishWaiter(IActorRef coordinator, TaskCompletionSource<SweepSnapshot> finished, Dictionary<string, List<TrialMetrics>> progress)
        {
            Receive<TrialStarted>(started =>
            {
                lock (progress) progress[started.TrialId] = progress.TryGetValue(started.TrialId, out var kept) ? kept.Where(m => m.Iteration <= started.FromIteration).ToList() : [];
            });
            Receive<TrialProgress>(p =>
            {
                lock (progress) progress[p.TrialId].Add(p.Metrics);
            });
            // The end says no more than that: the final state is asked for in-process.
            Receive<SweepFinished>(_ => coordinator.Tell(new GetSweepState()));
            Receive<SweepSnapshot>(final => finished.TrySetResult(final));
            ReceiveAny(_ => { });
            coordinator.Tell(new SubscribeToSweep());
        }
    }
}
