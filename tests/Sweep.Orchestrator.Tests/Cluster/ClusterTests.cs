using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using Sweep.Orchestrator.Hosting;
using Sweep.GpuWorker.Synthetic;
using Sweep.GpuWorker.Training;
using Sweep.Orchestrator.Journal;
using Sweep.Orchestrator.Running;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests.Cluster;

/// <summary>
/// Cluster-wide sweeps with real OS processes on loopback: a coordinator node, worker nodes, a
/// standby coordinator, a shared PostgreSQL journal, SIGKILL and Ctrl+C.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed partial class ClusterTests(PostgresServer postgres) : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(3);
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-cluster-").FullName;
    private readonly List<SweepProcess> processes = [];

    public void Dispose()
    {
        foreach (var process in processes) process.Dispose();
        Directory.Delete(temp, recursive: true);
    }

    private string Spec(int trials, int iterationMs, int maxIter)
    {
        var path = Path.Combine(temp, $"cluster-{trials}.conf");
        var seeds = string.Join(", ", Enumerable.Range(1, trials));
        File.WriteAllText(path, $$"""
            sweep {
              name = cluster
              model = synthetic
              max-iter = {{maxIter}}
              test-interval = 50
              grid {
                batch-size = [32]
                base-lr = [0.01]
                seed = [{{seeds}}]
              }
              synthetic { iteration-ms = {{iterationMs}} }
            }
            """);
        return path;
    }

    private SweepProcess Start(params string[] args)
    {
        var process = SweepProcess.Start(args);
        processes.Add(process);
        return process;
    }

    private SweepProcess Worker(int seedPort, string? journal = null, int slots = 1) =>
        Start(["worker", "--join", $"127.0.0.1:{seedPort}", "--workers", slots.ToString(), "--threads", "1", "--data-dir", temp,
            .. (journal is null ? Array.Empty<string>() : ["--journal", journal])]);

    [Fact]
    public async Task A_coordinator_node_and_two_worker_nodes_run_12_trials_each_ending_exactly_once()
    {
        var journal = postgres.CreateDatabase();
        int port = FreePort.Next();
        var coordinator = Start("run", Spec(12, 10, 100), "--sweep-id", "twelve", "--port", port.ToString(), "--workers", "0", "--journal", journal, "--data-dir", temp);
        coordinator.WaitForLine(l => l.StartsWith("sweep twelve"), Long);
        Worker(port);
        Worker(port);

        Assert.True(coordinator.WaitForExit(Long) == 0, coordinator.Stdout + coordinator.Stderr);

        var events = await Events(journal, "twelve");
        AssertEveryTrialCompletedOnce(events, 12);
        var nodes = events.OfType<TrialStarted>().Select(e => e.Node).Distinct().ToList();
        Assert.Equal(2, nodes.Count);
        Assert.DoesNotContain(nodes, n => n.EndsWith($":{port}"));
    }

    [Fact]
    public async Task Lenet_trials_trained_on_worker_nodes_give_exactly_their_solo_numbers()
    {
        var journal = postgres.CreateDatabase();
        int port = FreePort.Next();
        var spec = Path.Combine(temp, "lenet.conf");
        File.WriteAllText(spec, """
            sweep {
              name = cluster-lenet
              model = lenet
              max-iter = 30
              test-interval = 10
              grid { batch-size = [32, 64], base-lr = [0.01] }
            }
            """);
        var coordinator = Start("run", spec, "--sweep-id", "remote", "--port", port.ToString(), "--workers", "0", "--journal", journal, "--data-dir", temp);
        coordinator.WaitForLine(l => l.StartsWith("sweep remote"), Long);
        Worker(port);
        Worker(port);

        Assert.True(coordinator.WaitForExit(Long) == 0, coordinator.Stdout + coordinator.Stderr);

        var events = await Events(journal, "remote");
        AssertEveryTrialCompletedOnce(events, 2);
        Assert.DoesNotContain(events.OfType<TrialStarted>(), e => e.Node.EndsWith($":{port}"));
        Assert.All(events.OfType<SlotChecked>(), e => Assert.True(e.Health.Healthy, e.Health.Summary));
        foreach (var trial in events.OfType<SweepStarted>().Single().Definition.Trials)
        {
            var points = events.OfType<TrialProgress>().Where(e => e.TrialId == trial.Id).Select(e => SoloTrain.Computed(e.Metrics)).ToList();
            Assert.Equal(SoloTrain.Points(trial.Spec, threads: 1), points);
        }
    }

    [Fact]
    public async Task A_worker_node_killed_mid_trial_has_its_trial_requeued_to_the_other_node()
    {
        var (journal, coordinator, doomed, doomedAddress) = CoordinatorAndTwoWorkersMidTrial("lost-worker");

        doomed.Signal(SweepProcess.SIGKILL);

        Assert.True(coordinator.WaitForExit(Long) == 0, coordinator.Stdout + coordinator.Stderr);
        var events = await Events(journal, "lost-worker");
        AssertEveryTrialCompletedOnce(events, 4);
        var lost = events.OfType<TrialRequeued>().Single(e => e.Reason.Contains("was lost"));
        var rerun = events.OfType<TrialStarted>().Where(e => e.TrialId == lost.TrialId).ToList();
        Assert.True(rerun.Count >= 2);
        Assert.DoesNotContain(doomedAddress, rerun[^1].Node);
        Assert.True(rerun[^1].Attempt >= 2);
    }

    [Fact]
    public async Task Killing_the_node_hosting_the_coordinator_moves_it_to_the_standby_which_finishes_the_sweep()
    {
        var (journal, port, first, standby, workers) = CoordinatorStandbyAndTwoWorkersMidSweep("failover", trials: 8, slotsPerWorker: 1);

        first.Signal(SweepProcess.SIGKILL);

        Assert.True(standby.WaitForExit(Long) == 0, standby.Stdout + standby.Stderr);
        Assert.Contains("the coordinator moved", standby.Stdout);
        // A fail-over is news, not a crash: no stack trace on any node's console, and no false
        // "failed to find" warning from the singleton proxies (Akka.NET logs it the moment they start looking).
        SweepProcess[] nodes = [first, standby, .. workers];
        foreach (var node in nodes)
        {
            var console = node.Stdout + node.Stderr;
            Assert.DoesNotContain("   at ", console);
            Assert.DoesNotContain("ClusterSingletonProxy failed to find", console);
            // The loss in the cluster's own words, once per event, not Akka's transport reports.
            Assert.DoesNotContain("Disassociated", console);
            Assert.DoesNotContain("Tried to associate", console);
        }
        Assert.Contains($"cluster: node 127.0.0.1:{port} (coordinator) is unreachable; it is downed if it stays so for 4 s", standby.Stderr);
        Assert.Contains($"cluster: node 127.0.0.1:{port} (coordinator) was downed", standby.Stderr);
        var events = await Events(journal, "failover");
        AssertEveryTrialCompletedOnce(events, 8);
        Assert.Single(events.OfType<SweepCompleted>());
    }

    /// <summary>
    /// The two cases where keep-majority downed a whole cluster in the chaos soak (issue 13): half of
    /// an even cluster dying at once (a tie, which keep-majority gives to the lowest address, dead
    /// or not), and a node leaving while another dies (keep-majority then counts the leaving one
    /// against itself and downs everything). Keep-oldest keeps the side with the first node up in both.
    /// </summary>
    [Fact]
    public async Task The_surviving_side_stays_up_when_half_the_nodes_die_at_once_and_when_a_node_leaves_while_another_dies()
    {
        var (journal, port, first, standby, doomed) = CoordinatorStandbyAndTwoWorkersMidSweep("downing", trials: 40, slotsPerWorker: 1, maxIter: 100);
        int Completed() => first.Stdout.Split('\n').Count(l => l.Contains(": completed, test accuracy "));

        // Two of four members die together: 2 against 2.
        foreach (var worker in doomed) worker.Signal(SweepProcess.SIGKILL);
        var leaving = Worker(port);
        // The newcomer is Up once both are downed: the next failure comes after the cluster settled,
        // as kills 20 s apart do in the soak (docs/cluster.md, "Downing", says why two failures
        // within one detection window are another matter).
        WaitUntilUp(leaving);
        int before = Completed();
        first.WaitForLines(_ => Completed() >= before + 2, Long);

        // Three members: one leaves (SIGTERM) at the moment another dies (kill -9).
        leaving.Signal(SweepProcess.SIGTERM);
        standby.Signal(SweepProcess.SIGKILL);
        Assert.Equal(0, leaving.WaitForExit(TimeSpan.FromMinutes(1)));
        Worker(port);

        Assert.True(first.WaitForExit(Long) == 0, first.Stdout + first.Stderr);
        Assert.DoesNotContain("removed from the cluster", first.Stdout);
        AssertEveryTrialCompletedOnce(await Events(journal, "downing"), 40);
    }

    /// <summary>
    /// Issue 13's cliff: a 10,000-trial sweep is megabytes of definition and state, Akka.Remote's
    /// frame 128,000 bytes. Started with `run --join` while the coordinator lives on another node
    /// (the definition travels in parts), then taken over by that `run` node after kill -9 of the
    /// coordinator's node (the state is read from the journal, never sent).
    /// </summary>
    [Fact]
    public async Task A_10000_trial_sweep_starts_from_a_joining_node_and_survives_a_coordinator_take_over()
    {
        var journal = postgres.CreateDatabase();
        int port = FreePort.Next();
        var warm = Start("run", Spec(1, 1, 10), "--sweep-id", "warm", "--port", port.ToString(), "--workers", "0", "--journal", journal, "--data-dir", temp);
        var host = Worker(port, journal); // may coordinate: it hosts the coordinator once the first node is gone
        var hostAddress = AddressOf(host);
        Assert.True(warm.WaitForExit(Long) == 0, warm.Stdout + warm.Stderr);

        var spec = Path.Combine(temp, "large.conf");
        File.WriteAllText(spec, Coordination.StartAssemblyTests.TenThousandTrialsSpec);
        var run = Start("run", spec, "--sweep-id", "large", "--port", FreePort.Next().ToString(), "--join", hostAddress, "--workers", "0", "--journal", journal, "--data-dir", temp);
        run.WaitForLine(l => l.StartsWith("sweep large (large): 10000 of 10000 trial(s)"), Long);
        int Completed() => run.Stdout.Split('\n').Count(l => l.Contains(": completed, test accuracy "));
        run.WaitForLines(_ => Completed() >= 3, Long);
        var other = Worker(int.Parse(hostAddress.Split(':')[1]));
        WaitUntilUp(other);

        host.Signal(SweepProcess.SIGKILL);
        run.WaitForLine(l => l.EndsWith("the coordinator moved; following it"), Long);
        int before = Completed();
        run.WaitForLines(_ => Completed() >= before + 10, Long);
        run.Signal(SweepProcess.SIGINT);
        run.WaitForExit(Long);

        foreach (var node in new[] { warm, host, run, other })
            Assert.DoesNotContain("max allowed size", node.Stdout + node.Stderr);
        var events = await Events(journal, "large");
        var expected = Sweep.Orchestrator.Specs.SweepSpecLoader.Parse(File.ReadAllText(spec), spec, temp, []);
        Assert.Equal(expected.Trials, events.OfType<SweepStarted>().Single().Definition.Trials);
        var completed = events.OfType<TrialCompleted>().GroupBy(e => e.TrialId).ToList();
        Assert.True(completed.Count >= before + 10, $"{completed.Count} trials completed");
        Assert.All(completed, trial => Assert.Single(trial));
    }

    [Fact]
    public async Task Results_finished_while_the_coordinators_node_is_dead_reach_its_successor_and_no_trial_trains_to_the_end_twice()
    {
        // 24 trials of 4 s on 6 slots: when the coordinator's node dies, the 6 running trials finish
        // well inside the hand-over (its node is downed ~13-16 s later), with nobody to tell.
        var (journal, _, first, standby, _) = CoordinatorStandbyAndTwoWorkersMidSweep("handover", trials: 24, slotsPerWorker: 3);

        var killedAt = DateTimeOffset.UtcNow;
        first.Signal(SweepProcess.SIGKILL);

        Assert.True(standby.WaitForExit(Long) == 0, standby.Stdout + standby.Stderr);
        var events = await Events(journal, "handover");
        AssertEveryTrialCompletedOnce(events, 24);

        // Trained to the end exactly once: each trial has one worker's word that an attempt of it
        // completed (the worker logs every end), and it is the attempt the journal records.
        var ends = SweepLogs.Read(SweepLogging.Directory(new JournalSettings(temp)), [], "handover", null)
            .Select(line => (line.At, End: WorkerEnd().Match(line.Message)))
            .Where(line => line.End.Success)
            .ToList();
        var completedByWorkers = ends.Where(e => e.End.Groups["outcome"].Value == "Completed")
            .GroupBy(e => e.End.Groups["trial"].Value)
            .ToDictionary(g => g.Key, g => g.Select(e => (e.At, Attempt: int.Parse(e.End.Groups["attempt"].Value))).ToList());
        var trials = events.OfType<SweepStarted>().Single().Definition.Trials;
        Assert.Equal(trials.Select(t => t.Name).Order(), completedByWorkers.Keys.Order());
        var twice = completedByWorkers.Where(t => t.Value.Count > 1).Select(t => $"{t.Key} (attempts {string.Join(", ", t.Value.Select(c => c.Attempt))})").ToList();
        Assert.True(twice.Count == 0, $"{twice.Count} trial(s) trained to the end more than once: {string.Join("; ", twice)}");
        foreach (var trial in trials)
            Assert.Equal(events.OfType<TrialCompleted>().Single(e => e.TrialId == trial.Id).Attempt, completedByWorkers[trial.Name][0].Attempt);
        // The case this is about happened: attempts the old coordinator started finished while it was dead.
        var startedBeforeKill = events.OfType<TrialStarted>().Where(e => e.At < killedAt).Select(e => (e.TrialId, e.Attempt)).ToHashSet();
        var finishedInHandOver = trials.Count(t => completedByWorkers[t.Name][0] is var c && c.At > killedAt && startedBeforeKill.Contains((t.Id, c.Attempt)));
        Assert.True(finishedInHandOver >= 3, $"{finishedInHandOver} attempts finished during the hand-over");

        // Every test point of every trial is in the journal exactly once, with the numbers the trial computes alone.
        foreach (var trial in trials)
        {
            var points = events.OfType<TrialProgress>().Where(e => e.TrialId == trial.Id).Select(e => e.Metrics).OrderBy(m => m.Iteration).ToList();
            Assert.Equal(SyntheticAlone(trial).Select(SoloTrain.Computed), points.Select(SoloTrain.Computed));
        }
    }

    /// <summary>A worker's line at the end of an attempt: "Trial NAME attempt N ended on WORKER: OUTCOME at iteration I …".</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^Trial (?<trial>.+) attempt (?<attempt>\d+) ended on \S+: (?<outcome>\w+) at iteration")]
    private static partial System.Text.RegularExpressions.Regex WorkerEnd();

    /// <summary>The test points of <paramref name="trial"/> of a synthetic sweep, computed here, alone and unpaced.</summary>
    private static IReadOnlyList<TrialMetrics> SyntheticAlone(TrialDefinition trial)
    {
        var run = new RunTrial("alone", trial, 1, ModelKind.Synthetic, new SyntheticSpec(IterationMs: 0), new DivergencePolicy(), "unused.ckpt", null);
        return new SyntheticRunner().Run(run, new TrainingOptions(1), new NoObserver(), CancellationToken.None).Metrics;
    }

    private sealed class NoObserver : ITrainingObserver
    {
        public void OnMetrics(TrialMetrics metrics)
        {
        }
    }

    [Fact]
    public async Task A_worker_that_leaves_with_ctrl_c_hands_its_trial_back_and_the_sweep_completes()
    {
        var (journal, coordinator, leaving, _) = CoordinatorAndTwoWorkersMidTrial("leaving");

        leaving.Signal(SweepProcess.SIGINT);

        Assert.Equal(0, leaving.WaitForExit(TimeSpan.FromMinutes(1)));
        Assert.Contains("left the cluster", leaving.Stdout);
        Assert.True(coordinator.WaitForExit(Long) == 0, coordinator.Stdout + coordinator.Stderr);
        var events = await Events(journal, "leaving");
        AssertEveryTrialCompletedOnce(events, 4);
        var handedBack = events.OfType<TrialRequeued>().Single(e => e.Reason.Contains("left"));
        Assert.Contains(events.OfType<TrialStarted>(), e => e.TrialId == handedBack.TrialId && e.FromIteration > 0);
    }

    [Fact]
    public async Task A_worker_node_terminated_mid_sweep_unregisters_first_and_its_trials_keep_honest_attempt_counts()
    {
        var journal = postgres.CreateDatabase();
        int port = FreePort.Next();
        var first = Start("run", Spec(8, 20, 200), "--sweep-id", "sigterm", "--port", port.ToString(), "--workers", "1", "--threads", "1", "--journal", journal, "--data-dir", temp);
        first.WaitForLine(l => l.StartsWith("sweep sigterm"), Long);
        var leaving = Start("worker", "--join", $"127.0.0.1:{port}", "--workers", "2", "--threads", "1", "--data-dir", temp);
        var slotPrefix = $"sweep@{AddressOf(leaving)}/";
        WaitUntilUp(first, leaving);
        // Both of the worker's slots are part-way through a trial.
        first.WaitForLines(lines => StartedOn(lines, slotPrefix).Count >= 2, Long);
        first.WaitForLines(lines => StartedOn(lines, slotPrefix).Any(name => lines.Any(l => l.Contains($"{name}: iter 50/200"))), Long);

        var terminatedAt = DateTimeOffset.UtcNow;
        leaving.Signal(SweepProcess.SIGTERM);

        Assert.Equal(0, leaving.WaitForExit(TimeSpan.FromMinutes(1)));
        Assert.Contains("left the cluster", leaving.Stdout);
        Assert.True(first.WaitForExit(Long) == 0, first.Stdout + first.Stderr);
        var events = await Events(journal, "sigterm");
        AssertEveryTrialCompletedOnce(events, 8);
        Assert.Empty(events.OfType<TrialFailed>());

        // Unregistered before handing back: the trials it ran went back once each, and whatever the
        // coordinator handed it meanwhile came back unstarted (at most once per slot), not 783 times.
        bool Names(string text) => text.Contains(slotPrefix, StringComparison.Ordinal);
        var requeued = events.OfType<TrialRequeued>().Where(e => Names(e.Reason)).ToList();
        var handedBack = events.OfType<TrialHandedBack>().Where(e => Names(e.WorkerId)).ToList();
        var startedAfter = events.OfType<TrialStarted>().Where(e => Names(e.WorkerId) && e.At >= terminatedAt).ToList();
        Assert.InRange(requeued.Count, 1, 2);
        Assert.All(requeued, e => Assert.Contains("left at iteration", e.Reason));
        Assert.InRange(handedBack.Count, 0, 2);
        Assert.True(startedAfter.Count <= handedBack.Count, $"{startedAfter.Count} attempts started on the leaving worker after SIGTERM, {handedBack.Count} handed back");
        Assert.True(requeued.Count + handedBack.Count + startedAfter.Count < 20);

        // Attempts count runs that started: TrialStarted events, less those handed back unstarted.
        var final = Sweep.Orchestrator.Coordination.SweepState.Start(events.OfType<SweepStarted>().Single());
        foreach (var e in events.Where(e => e is not SweepStarted)) final.Apply(e);
        foreach (var trial in final.Trials)
        {
            int runs = events.OfType<TrialStarted>().Count(e => e.TrialId == trial.Definition.Id) - events.OfType<TrialHandedBack>().Count(e => e.TrialId == trial.Definition.Id);
            Assert.Equal(runs, trial.Attempts);
            Assert.InRange(trial.Attempts, 1, 2);
        }
        // The sweep finished on the remaining slot, the run node's.
        var lastLeave = requeued.Max(e => e.At);
        Assert.All(events.OfType<TrialStarted>().Where(e => e.At > lastLeave), e => Assert.EndsWith($":{port}/cpu-1", e.WorkerId));
    }

    /// <summary>The names of the trials the progress lines show starting on a worker id beginning with <paramref name="slotPrefix"/>.</summary>
    private static List<string> StartedOn(IReadOnlyList<string> lines, string slotPrefix) =>
        lines.Where(l => l.Contains(": started attempt ") && l.Contains($" on {slotPrefix}"))
            .Select(l => l[(l.IndexOf(' ') + 1)..l.IndexOf(": started attempt ", StringComparison.Ordinal)])
            .ToList();

    [Fact]
    public async Task Messages_with_an_unknown_manifest_or_type_name_json_are_refused_without_harm()
    {
        var journal = postgres.CreateDatabase();
        int port = FreePort.Next();
        var coordinator = Start("run", Spec(3, 20, 100), "--sweep-id", "wire", "--port", port.ToString(), "--workers", "1", "--threads", "1", "--journal", journal, "--data-dir", temp);
        coordinator.WaitForLine(l => l.StartsWith("sweep wire"), Long);

        using (var intruder = ActorSystem.Create("intruder", ConfigurationFactory.ParseString($$"""
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
            akka.actor.serializers.forged = "{{typeof(ForgedManifestSerializer).AssemblyQualifiedName}}"
            akka.actor.serialization-bindings { "{{typeof(Forged).AssemblyQualifiedName}}" = forged }
            akka.loglevel = ERROR
            """)))
        {
            var target = intruder.ActorSelection($"akka.tcp://sweep@127.0.0.1:{port}/user/director-proxy");
            target.Tell(new Forged("/etc/passwd"));
            target.Tell(new FileInfo("/etc/passwd")); // goes out through Akka's type-name JSON serializer
            await Task.Delay(TimeSpan.FromSeconds(2));
            await intruder.Terminate();
        }

        Assert.True(coordinator.WaitForExit(Long) == 0, coordinator.Stdout + coordinator.Stderr);
        var output = coordinator.Stdout + coordinator.Stderr;
        Assert.Contains("unknown manifest 'System.IO.FileInfo", output);
        Assert.Contains("refused", output);
        AssertEveryTrialCompletedOnce(await Events(journal, "wire"), 3);
    }

    private static void AssertEveryTrialCompletedOnce(IReadOnlyList<ISweepEvent> events, int trials)
    {
        var completed = events.OfType<TrialCompleted>().GroupBy(e => e.TrialId).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(trials, completed.Count);
        Assert.All(completed.Values, count => Assert.Equal(1, count));
        Assert.DoesNotContain(events.OfType<TrialFailed>(), e => e.Final);
    }

    /// <summary>
    /// A coordinator node running a 4-trial sweep on two worker nodes, once the first worker is
    /// part-way through a trial: the worker to kill or stop, and its address.
    /// </summary>
    private (string Journal, SweepProcess Coordinator, SweepProcess FirstWorker, string FirstWorkerAddress) CoordinatorAndTwoWorkersMidTrial(string sweepId)
    {
        var journal = postgres.CreateDatabase();
        int port = FreePort.Next();
        var coordinator = Start("run", Spec(4, 40, 200), "--sweep-id", sweepId, "--port", port.ToString(), "--workers", "0", "--journal", journal, "--data-dir", temp);
        coordinator.WaitForLine(l => l.StartsWith($"sweep {sweepId}"), Long);
        var first = Worker(port);
        var address = AddressOf(first);
        WaitUntilUp(coordinator, first, Worker(port));
        coordinator.WaitForLine(l => l.Contains($"on sweep@{address}") && l.Contains("started attempt"), Long);
        coordinator.WaitForLine(l => l.Contains("iter 50/200"), Long);
        return (journal, coordinator, first, address);
    }

    /// <summary>
    /// A sweep of <paramref name="trials"/> synthetic trials of <paramref name="maxIter"/> iterations
    /// of 20 ms (4 s by default; a test point and checkpoint every 50) on a first node that only coordinates, with a standby
    /// coordinator (`resume --join`) and two worker nodes of <paramref name="slotsPerWorker"/>
    /// slots, once a trial per slot has completed: every slot is busy, the first node (on
    /// <c>Port</c>) is ready to kill.
    /// </summary>
    private (string Journal, int Port, SweepProcess First, SweepProcess Standby, SweepProcess[] Workers) CoordinatorStandbyAndTwoWorkersMidSweep(string sweepId, int trials, int slotsPerWorker, int maxIter = 200)
    {
        var journal = postgres.CreateDatabase();
        int port = FreePort.Next();
        var first = Start("run", Spec(trials, 20, maxIter), "--sweep-id", sweepId, "--port", port.ToString(), "--workers", "0", "--journal", journal, "--data-dir", temp);
        first.WaitForLine(l => l.StartsWith($"sweep {sweepId}"), Long);
        var standby = Start("resume", sweepId, "--port", FreePort.Next().ToString(), "--join", $"127.0.0.1:{port}", "--workers", "0", "--journal", journal, "--data-dir", temp);
        standby.WaitForLine(l => l.StartsWith($"sweep {sweepId}"), Long);
        var workers = new[] { Worker(port, slots: slotsPerWorker), Worker(port, slots: slotsPerWorker) };
        WaitUntilUp([first, standby, .. workers]);
        first.WaitForLines(lines => lines.Count(l => l.Contains(": completed, test accuracy ")) >= 2 * slotsPerWorker, Long);
        return (journal, port, first, standby, workers);
    }

    /// <summary>Waits until each node says it is a member in state Up: before that, the split-brain resolver would not count it.</summary>
    private static void WaitUntilUp(params SweepProcess[] nodes)
    {
        foreach (var node in nodes) node.WaitForLine(SweepProcess.SaysUp, Long);
    }

    private static string AddressOf(SweepProcess worker)
    {
        worker.WaitForLine(l => l.StartsWith("worker node akka.tcp://sweep@"), Long);
        var line = worker.Stdout.Split('\n').First(l => l.StartsWith("worker node akka.tcp://sweep@"));
        return line["worker node akka.tcp://sweep@".Length..].Split(' ')[0];
    }

    private async Task<IReadOnlyList<ISweepEvent>> Events(string journal, string sweepId)
    {
        return await SweepJournal.EventsAsync(new JournalSettings(temp, journal), sweepId);
    }


    /// <summary>A message an attacker dresses up for the sweep serializer's id, naming a type it never accepts.</summary>
    public sealed record Forged(string Path);

    public sealed class ForgedManifestSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
    {
        public override int Identifier => Sweep.Protocol.Serialization.SweepSerializer.SerializerId;

        public override string Manifest(object o) => "System.IO.FileInfo, System.IO.FileSystem";

        public override byte[] ToBinary(object obj) => System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType());

        public override object FromBinary(byte[] bytes, string manifest) => throw new NotSupportedException();
    }
}
