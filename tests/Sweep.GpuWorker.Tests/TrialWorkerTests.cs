using Akka.Actor;
using Akka.TestKit;
using Sweep.GpuWorker.Synthetic;
using Sweep.GpuWorker.Training;
using Sweep.GpuWorker.Workers;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Tests;

/// <summary>The worker actor running real (synthetic) trials, with a probe as its coordinator.</summary>
public sealed class TrialWorkerTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly TempDirectory temp = new();
    private readonly TestProbe coordinator;
    private readonly IActorRef worker;

    public TrialWorkerTests()
    {
        coordinator = CreateTestProbe();
        worker = Sys.ActorOf(TrialWorker.Props(new WorkerSlot("w1", "node", "cpu", 1), coordinator.Ref));
        var register = coordinator.ExpectMsg<RegisterWorker>(Wait);
        Assert.Equal("w1", register.Slot.WorkerId);
        coordinator.Reply(new WorkerRegistered("sweep"));
    }

    void IDisposable.Dispose()
    {
        temp.Dispose();
        Dispose();
    }

    /// <summary>The next end the coordinator hears, acknowledged as the coordinator does once the journal holds it.</summary>
    private TrialEnded Ended()
    {
        var ended = coordinator.FishForMessage<TrialEnded>(_ => true, Wait);
        worker.Tell(new TrialEndRecorded(ended.TrialId, ended.Attempt), coordinator.Ref);
        return ended;
    }

    private RunTrial Run(string name = "t1", double lr = 0.01, int attempt = 1, DivergencePolicy? divergence = null, double iterationMs = 1, int maxIter = 100, params SyntheticFault[] faults) =>
        new("sweep", new TrialDefinition("id-" + name, name, new TrialSpec(32, 64, lr, maxIter, 50, 1, new SolverSpec(), new DatasetSpec("unused"))),
            attempt, ModelKind.Synthetic, new SyntheticSpec(iterationMs, 0.08, faults), divergence ?? new DivergencePolicy(), temp.File(name + ".ckpt"), null);

    [Fact]
    public void Keeps_registering_until_the_coordinator_answers()
    {
        var silent = CreateTestProbe();
        Sys.ActorOf(TrialWorker.Props(new WorkerSlot("w2", "node", "cpu", 1), silent.Ref));

        var first = silent.ExpectMsg<RegisterWorker>(Wait);
        var second = silent.ExpectMsg<RegisterWorker>(Wait);
        Assert.Equal(first.Incarnation, second.Incarnation);
        silent.Reply(new WorkerRegistered("sweep"));
        silent.ExpectNoMsg(TimeSpan.FromSeconds(3));
    }

    [Fact]
    public void Runs_a_trial_reporting_each_test_point_then_completion_and_ignores_a_redelivery()
    {
        var run = Run();
        worker.Tell(run, coordinator.Ref);
        worker.Tell(run, coordinator.Ref);

        var iterations = new List<int>();
        TrialEnded? ended = null;
        while (ended is null)
        {
            var message = coordinator.ExpectMsg<object>(Wait);
            if (message is TestPointReported p) iterations.Add(p.Metrics.Iteration);
            else if (message is TrialEnded e) ended = e;
        }

        Assert.Equal(new[] { 0, 50, 100 }, iterations);
        Assert.Equal((TrialEndKind.Completed, 100, 1), (ended.Kind, ended.Iteration, ended.Attempt));
        worker.Tell(new TrialEndRecorded(ended.TrialId, ended.Attempt), coordinator.Ref);
        coordinator.ExpectNoMsg(TimeSpan.FromMilliseconds(500)); // no second run of the same attempt
    }

    [Fact]
    public void The_sweeps_divergence_policy_stops_the_trial_at_the_test_point_that_breaks_it()
    {
        worker.Tell(Run(divergence: new DivergencePolicy(ChanceAfter: 50, ChanceAccuracy: 0.999)), coordinator.Ref);

        var ended = Ended();

        Assert.Equal(TrialEndKind.Diverged, ended.Kind);
        Assert.Equal(50, ended.Iteration);
        Assert.Contains("at chance", ended.Reason);
    }

    [Fact]
    public void A_nan_loss_ends_as_diverged_and_faults_end_as_failed_or_out_of_memory()
    {
        worker.Tell(Run("nan", lr: 0.1), coordinator.Ref);
        var nan = Ended();
        Assert.Equal((TrialEndKind.Diverged, "loss is NaN"), (nan.Kind, nan.Reason));

        worker.Tell(Run("boom", faults: new SyntheticFault("boom", 30, FaultKind.Exception, [1])), coordinator.Ref);
        var failed = Ended();
        Assert.Equal(TrialEndKind.Failed, failed.Kind);
        Assert.Contains("injected fault", failed.Reason);

        worker.Tell(Run("oom", faults: new SyntheticFault("oom", 10, FaultKind.OutOfMemory, [1])), coordinator.Ref);
        var oom = Ended();
        Assert.Equal(TrialEndKind.OutOfMemory, oom.Kind);
    }

    [Fact]
    public void A_nan_loss_under_the_initial_weights_fails_the_attempt_as_a_fault_instead_of_diverging()
    {
        worker.Tell(Run("broken-device", faults: new SyntheticFault("broken-device", 0, FaultKind.Nan, [1])), coordinator.Ref);

        var ended = Ended();

        Assert.Equal((TrialEndKind.Failed, 0), (ended.Kind, ended.Iteration));
        Assert.Equal("training loss is NaN under the initial weights (iteration 0, before any update): a fault of the device or the data, not a divergence", ended.Reason);
    }

    [Fact]
    public void A_slot_registers_only_after_its_self_test_and_an_unhealthy_one_refuses_trials()
    {
        var silent = CreateTestProbe();
        var verdict = new SlotHealth(false, "self-test failed on cpu (1 thread): training conv2 output off by 2.1e-01");
        using var release = new ManualResetEventSlim();
        var sick = Sys.ActorOf(TrialWorker.Props(new WorkerSlot("sick", "node", "cpu", 1), silent.Ref, selfTest: () =>
        {
            release.Wait(Wait);
            return verdict;
        }));
        silent.ExpectNoMsg(TimeSpan.FromMilliseconds(500)); // still testing: not registered yet

        release.Set();

        Assert.Equal(verdict, silent.ExpectMsg<RegisterWorker>(Wait).Health);
        silent.Reply(new WorkerRegistered("sweep"));
        sick.Tell(Run("t-sick"), silent.Ref);
        var refused = silent.FishForMessage<TrialEnded>(_ => true, Wait);
        Assert.Equal(TrialEndKind.Failed, refused.Kind);
        Assert.Contains("sick takes no trials: self-test failed", refused.Reason);
    }

    [Fact]
    public void A_self_test_that_throws_or_hangs_is_an_unhealthy_verdict_never_a_slot_that_never_registers()
    {
        var first = CreateTestProbe();
        Sys.ActorOf(TrialWorker.Props(new WorkerSlot("throws", "node", "cpu", 1), first.Ref, selfTest: () => throw new InvalidOperationException("driver gone")));
        var thrown = first.ExpectMsg<RegisterWorker>(Wait).Health;
        Assert.Equal((false, "self-test could not run on cpu: InvalidOperationException: driver gone"), (thrown.Healthy, thrown.Summary));

        var second = CreateTestProbe();
        using var never = new ManualResetEventSlim();
        Sys.ActorOf(TrialWorker.Props(new WorkerSlot("hangs", "node", "cpu", 1), second.Ref, selfTest: () =>
        {
            never.Wait(Wait);
            return new SlotHealth(true, "too late");
        }, selfTestTimeout: TimeSpan.FromMilliseconds(300)));
        var hung = second.ExpectMsg<RegisterWorker>(Wait).Health;
        Assert.Equal((false, "self-test did not finish within 0.3 s on cpu"), (hung.Healthy, hung.Summary));
    }

    [Fact]
    public void A_slot_without_a_self_test_registers_at_once_as_not_needing_one()
    {
        var silent = CreateTestProbe();
        Sys.ActorOf(TrialWorker.Props(new WorkerSlot("synthetic", "node", "cpu", 1), silent.Ref));

        Assert.Equal(SlotHealth.NotNeeded, silent.ExpectMsg<RegisterWorker>(Wait).Health);
    }

    [Fact]
    public void A_checkpoint_missing_on_this_node_is_reported_and_the_attempt_starts_from_scratch()
    {
        var run = Run() with { Attempt = 2, ResumeFrom = temp.File("written-on-another-node.ckpt") };
        worker.Tell(run, coordinator.Ref);

        var missing = coordinator.ExpectMsg<TrialCheckpointMissing>(Wait);
        Assert.Equal((run.Trial.Id, 2, run.ResumeFrom), (missing.TrialId, missing.Attempt, missing.Path));
        Assert.Equal(0, coordinator.ExpectMsg<TestPointReported>(Wait).Metrics.Iteration);
        Assert.Equal(TrialEndKind.Completed, Ended().Kind);
    }

    [Fact]
    public void Stop_ends_the_attempt_with_a_checkpoint_it_can_continue_from()
    {
        var run = Run(iterationMs: 20);
        worker.Tell(run, coordinator.Ref);
        coordinator.FishForMessage<TestPointReported>(p => p.Metrics.Iteration == 0, Wait);

        worker.Tell(new StopTrial(run.Trial.Id, run.Attempt, Checkpoint: true), coordinator.Ref);

        var ended = Ended();
        Assert.Equal(TrialEndKind.Stopped, ended.Kind);
        Assert.InRange(ended.Iteration, 0, 99);
        Assert.Equal(CheckpointFiles.Versioned(run.CheckpointPath, ended.Iteration), ended.CheckpointPath);
        Assert.True(File.Exists(ended.CheckpointPath));

        worker.Tell(run with { Attempt = 2, ResumeFrom = ended.CheckpointPath }, coordinator.Ref);
        var resumed = Ended();
        Assert.Equal((TrialEndKind.Completed, 2), (resumed.Kind, resumed.Attempt));
    }

    [Fact]
    public void Each_checkpoint_gets_its_own_file_and_only_an_acknowledgement_of_a_newer_one_deletes_the_older()
    {
        var run = Run(maxIter: 200);
        var (_, saved, _) = RunToEnd(run);

        Assert.Equal(new[] { (50, At(run, 50)), (100, At(run, 100)), (150, At(run, 150)) }, saved.Select(s => (s.Iteration, s.Path)));
        Assert.All(saved, s => Assert.True(File.Exists(s.Path), s.Path)); // nothing is acknowledged yet: nothing goes

        worker.Tell(new TrialCheckpointRecorded(run.Trial.Id, run.Attempt + 1, 200), coordinator.Ref); // another attempt's: ignored
        worker.Tell(new TrialCheckpointRecorded(run.Trial.Id, run.Attempt, 100), coordinator.Ref);
        AwaitAssert(() => Assert.False(File.Exists(At(run, 50))), Wait);
        Assert.True(File.Exists(At(run, 100)) && File.Exists(At(run, 150)));

        worker.Tell(new TrialCheckpointRecorded(run.Trial.Id, run.Attempt, 150), coordinator.Ref);
        AwaitAssert(() => Assert.False(File.Exists(At(run, 100))), Wait);
        Assert.Equal([At(run, 150)], CheckpointFiles.VersionedIn(run.CheckpointPath, temp.Path));
    }

    [Fact]
    public void An_attempt_resumes_from_exactly_the_journalled_checkpoint_and_first_deletes_the_trials_other_versioned_files()
    {
        var run = Run(maxIter: 200);
        var (first, _, _) = RunToEnd(run);
        // What a journal that recorded only the checkpoint at 100 leaves: files at 50 (older), 150
        // (written, never journalled), a newer one at 175 and an unfinished write; the journal names 100.
        File.Copy(At(run, 150), temp.File("t1.it000000175.ckpt"));
        File.WriteAllText(temp.File("t1.it000000175.ckpt.partial"), "{");
        File.WriteAllText(temp.File("t1.ckpt"), "an older sweep's file");
        File.WriteAllText(temp.File("other.it000000100.ckpt"), "another trial's file");
        var journalled = At(run, 100);

        var (resumed, saved, missing) = RunToEnd(run with { Attempt = 2, ResumeFrom = journalled });

        Assert.Empty(missing);
        Assert.Equal(new[] { 150, 200 }, resumed.Select(m => m.Iteration));
        Assert.Equal(Computed(first.Where(m => m.Iteration > 100)), Computed(resumed));
        Assert.Equal(new[] { (150, At(run, 150)) }, saved.Select(s => (s.Iteration, s.Path)));
        Assert.Equal(["other.it000000100.ckpt", "t1.ckpt", "t1.it000000100.ckpt", "t1.it000000150.ckpt"], Directory.GetFiles(temp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // Once the journal holds the attempt's checkpoint at 150, the one it resumed from is superseded too.
        worker.Tell(new TrialCheckpointRecorded(run.Trial.Id, 2, 150), coordinator.Ref);
        AwaitAssert(() => Assert.False(File.Exists(journalled)), Wait);
        Assert.True(File.Exists(At(run, 150)));
    }

    [Fact]
    public void An_attempt_from_scratch_first_deletes_all_the_trials_versioned_files()
    {
        var run = Run();
        string[] stale = ["t1.it000000075.ckpt", "t1.it000000125.ckpt.partial"];
        string[] kept = ["t1.ckpt", "other.it000000075.ckpt"];
        foreach (var name in stale.Concat(kept)) File.WriteAllText(temp.File(name), name);

        var (metrics, saved, _) = RunToEnd(run);

        Assert.Equal(new[] { 0, 50, 100 }, metrics.Select(m => m.Iteration));
        Assert.Equal([At(run, 50)], saved.Select(s => s.Path));
        Assert.Equal(kept.Append("t1.it000000050.ckpt").Order(StringComparer.Ordinal), Directory.GetFiles(temp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_legacy_unversioned_checkpoint_named_by_an_old_journal_still_resumes_exactly()
    {
        var run = Run(maxIter: 200);
        var reference = new SyntheticRunner().Run(run, new TrainingOptions(1), new Observer(), CancellationToken.None);
        // A sweep before versioned files: one file at the base path, overwritten at every checkpoint; copied here at 100.
        var legacy = run.CheckpointPath;
        new SyntheticRunner().Run(run, new TrainingOptions(1, CheckpointPath: temp.File("writing.ckpt")), new Observer((iteration, path) =>
        {
            if (iteration == 100) File.Copy(path, legacy);
        }), CancellationToken.None);
        File.Delete(temp.File("writing.ckpt"));

        var (resumed, saved, missing) = RunToEnd(run with { Attempt = 2, ResumeFrom = legacy });

        Assert.Empty(missing);
        Assert.Equal(Computed(reference.Metrics.Where(m => m.Iteration > 100)), Computed(resumed));
        Assert.Equal(new[] { (150, At(run, 150)) }, saved.Select(s => (s.Iteration, s.Path)));
        Assert.True(File.Exists(legacy));
    }

    [Fact]
    public void A_damaged_checkpoint_is_reported_with_why_and_the_same_attempt_runs_from_scratch_with_the_uninterrupted_metrics()
    {
        var run = Run(maxIter: 200);
        var (first, _, _) = RunToEnd(run);
        var journalled = At(run, 100);
        var bytes = File.ReadAllBytes(journalled);
        File.WriteAllBytes(journalled, bytes[..(bytes.Length / 2)]); // an interrupted copy

        var (again, saved, missing) = RunToEnd(run with { Attempt = 2, ResumeFrom = journalled });

        var report = Assert.Single(missing);
        Assert.Equal((run.Trial.Id, 2, journalled), (report.TrialId, report.Attempt, report.Path));
        Assert.StartsWith("damaged checkpoint (JsonException: ", report.Reason);
        Assert.Equal(Computed(first), Computed(again));
        Assert.Equal(new[] { 50, 100, 150 }, saved.Select(s => s.Iteration));
        // The damaged file went with the failed start; the checkpoint at 100 is whole again and resumes exactly.
        Assert.Equal(Computed(first.Where(m => m.Iteration > 100)), Computed(new SyntheticRunner().Run(run, new TrainingOptions(1, ResumeFrom: journalled), new Observer(), CancellationToken.None).Metrics));
    }

    [Fact]
    public void An_end_nobody_acknowledges_is_sent_again_and_after_a_hand_over_to_the_successor_until_it_acknowledges()
    {
        var (proxy, first, slotWorker) = WorkerBehindProxy("w-end");
        var run = Run();
        slotWorker.Tell(run, first.Ref);

        // The first coordinator hears the attempt (three test points, a checkpoint, the end) and never answers: its node is dying.
        var heard = ReportsUntilEnd(proxy);
        Assert.Equal(["progressed 0", "progressed 50", "checkpoint 50", "progressed 100", "ended Completed"], heard.Select(Describe));
        Assert.Equal(heard, ReportsUntilEnd(proxy)); // sent again, all of the attempt, in order
        // Its node is gone: the worker registers with the successor (idle), and only then sends it what was not acknowledged.
        Sys.Stop(first.Ref);
        Assert.Null(proxy.FishForMessage<RegisterWorker>(_ => true, Wait).Running);
        var successor = CreateTestProbe();
        successor.Send(slotWorker, new WorkerRegistered("sweep"));
        Assert.Equal(heard, ReportsUntilEnd(proxy));

        successor.Send(slotWorker, new TrialEndRecorded(run.Trial.Id, run.Attempt));

        // Acknowledged: nothing of the attempt goes again (WorkerLeaving marks when the worker had the answer).
        slotWorker.Tell(new TrialWorker.Leave());
        proxy.FishForMessage<WorkerLeaving>(_ => true, Wait);
        proxy.ExpectNoMsg(TrialWorker.RetryEvery * 2);
    }

    [Fact]
    public void A_running_attempts_reports_wait_while_it_has_no_coordinator_and_the_successor_gets_all_since_the_last_acknowledged_checkpoint_in_order()
    {
        var (proxy, first, slotWorker) = WorkerBehindProxy("w-running");
        var run = Run(maxIter: 300, iterationMs: 20);
        slotWorker.Tell(run, first.Ref);
        proxy.FishForMessage<TrialCheckpointSaved>(c => c.Iteration == 100, Wait);
        first.Send(slotWorker, new TrialCheckpointRecorded(run.Trial.Id, run.Attempt, 100));
        AwaitAssert(() => Assert.False(File.Exists(At(run, 50))), Wait); // the acknowledgement is in

        Sys.Stop(first.Ref);

        // Whatever went out before the worker saw its coordinator die, the registration names the running attempt, and nothing follows it until the successor answers.
        Assert.Equal(run, proxy.FishForMessage<RegisterWorker>(_ => true, Wait).Running);
        var successor = CreateTestProbe();
        successor.Send(slotWorker, new WorkerRegistered("sweep"));
        Assert.Equal(
            ["progressed 150", "checkpoint 150", "progressed 200", "checkpoint 200", "progressed 250", "checkpoint 250", "progressed 300", "ended Completed"],
            ReportsUntilEnd(proxy).Select(Describe));
    }

    /// <summary>
    /// A worker whose coordinator is the proxy <c>Proxy</c> (what it sends to) and which registered with
    /// <c>First</c> (what it watches), as a worker node reaches the cluster singleton.
    /// </summary>
    private (TestProbe Proxy, TestProbe First, IActorRef Worker) WorkerBehindProxy(string workerId)
    {
        var proxy = CreateTestProbe();
        var first = CreateTestProbe();
        var slotWorker = Sys.ActorOf(TrialWorker.Props(new WorkerSlot(workerId, "node", "cpu", 1), proxy.Ref));
        proxy.ExpectMsg<RegisterWorker>(Wait);
        first.Send(slotWorker, new WorkerRegistered("sweep"));
        return (proxy, first, slotWorker);
    }

    /// <summary>The reports <paramref name="proxy"/> hears up to and with the next end (registrations aside).</summary>
    private static List<ISweepMessage> ReportsUntilEnd(TestProbe proxy)
    {
        var reports = new List<ISweepMessage>();
        while (reports.LastOrDefault() is not TrialEnded)
        {
            var message = proxy.ExpectMsg<ISweepMessage>(Wait);
            if (message is not RegisterWorker) reports.Add(message);
        }
        return reports;
    }

    private static string Describe(ISweepMessage report) => report switch
    {
        TestPointReported p => $"progressed {p.Metrics.Iteration}",
        TrialCheckpointSaved c => $"checkpoint {c.Iteration}",
        TrialEnded e => $"ended {e.Kind}",
        _ => report.GetType().Name,
    };

    /// <summary>The versioned checkpoint file of <paramref name="run"/>'s trial at <paramref name="iteration"/>.</summary>
    private static string At(RunTrial run, int iteration) => CheckpointFiles.Versioned(run.CheckpointPath, iteration);

    /// <summary>Runs one attempt to its end; what the coordinator heard of it, in order.</summary>
    private (List<TrialMetrics> Metrics, List<TrialCheckpointSaved> Saved, List<TrialCheckpointMissing> Missing) RunToEnd(RunTrial run) =>
        TrialWorkerTesting.RunToEnd(worker, coordinator, run, Wait);

    private static IEnumerable<(int, double, double, double, double, double, long)> Computed(IEnumerable<TrialMetrics> metrics) =>
        metrics.Select(m => (m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate, m.PeakMemoryBytes));

    private sealed class Observer(Action<int, string>? onCheckpoint = null) : ITrainingObserver
    {
        public void OnMetrics(TrialMetrics metrics)
        {
        }

        public void OnCheckpoint(int iteration, string path) => onCheckpoint?.Invoke(iteration, path);
    }
}

/// <summary>Drives a worker through one attempt with a probe as its coordinator.</summary>
internal static class TrialWorkerTesting
{
    /// <summary>Sends <paramref name="run"/> and collects what the coordinator hears until the attempt ends; it must end completed.</summary>
    public static (List<TrialMetrics> Metrics, List<TrialCheckpointSaved> Saved, List<TrialCheckpointMissing> Missing) RunToEnd(IActorRef worker, TestProbe coordinator, RunTrial run, TimeSpan wait)
    {
        worker.Tell(run, coordinator.Ref);
        var (metrics, saved, missing) = (new List<TrialMetrics>(), new List<TrialCheckpointSaved>(), new List<TrialCheckpointMissing>());
        while (true)
        {
            switch (coordinator.ExpectMsg<object>(wait))
            {
                case TestPointReported p when p.Attempt == run.Attempt:
                    metrics.Add(p.Metrics);
                    break;
                case TrialCheckpointSaved c when c.Attempt == run.Attempt:
                    saved.Add(c);
                    break;
                case TrialCheckpointMissing m:
                    missing.Add(m);
                    break;
                case TrialEnded e when e.Attempt == run.Attempt:
                    Assert.Equal(TrialEndKind.Completed, e.Kind);
                    worker.Tell(new TrialEndRecorded(e.TrialId, e.Attempt), coordinator.Ref);
                    return (metrics, saved, missing);
            }
        }
    }
}
