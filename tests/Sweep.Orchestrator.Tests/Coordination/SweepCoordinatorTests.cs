using Akka.Actor;
using Akka.TestKit;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>
/// The coordinator against a real SQLite journal, with test probes standing in for workers, so
/// every supervision decision can be provoked exactly.
/// </summary>
public sealed class SweepCoordinatorTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly JournalFixture journal;

    public SweepCoordinatorTests() : this(new JournalFixture())
    {
    }

    private SweepCoordinatorTests(JournalFixture journal) : base(journal.Start().System) => this.journal = journal;

    protected override void AfterAll()
    {
        base.AfterAll();
        journal.Dispose();
    }

    [Fact]
    public void Hands_one_trial_to_each_worker_and_completes_the_sweep()
    {
        var coordinator = Start(Sweep(trials: 3));
        var subscriber = CreateTestProbe();
        subscriber.Send(coordinator, new SubscribeToSweep());
        var (a, b) = (Worker("a"), Worker("b"));

        var first = a.ExpectMsg<RunTrial>(Wait);
        var second = b.ExpectMsg<RunTrial>(Wait);
        Assert.NotEqual(first.Trial.Id, second.Trial.Id);
        Assert.Equal(1, first.Attempt);
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // one attempt in flight per worker

        Complete(a, first);
        var third = a.ExpectMsg<RunTrial>(Wait);
        Complete(b, second);
        Complete(a, third);

        subscriber.FishForMessage<SweepFinished>(_ => true, Wait);
        var final = StateOf(coordinator);
        Assert.Equal(SweepPhase.Completed, final.Phase);
        Assert.All(final.Trials, t => Assert.Equal((TrialState.Completed, 1), (t.State, t.Attempts)));
    }

    [Fact]
    public void Retries_a_failure_after_the_backoff_on_another_worker_then_fails_it_for_good()
    {
        var coordinator = Start(Sweep(trials: 1, retry: new RetryPolicy(MaxAttempts: 3, BackoffSeconds: 1)));
        var (a, b) = (Worker("a"), Worker("b"));
        var (first, firstWorker, otherWorker) = FirstAssignment(a, b);

        End(firstWorker, Ended(first, TrialEndKind.Failed, "boom"));
        // The back-off holds the retry back, then it goes to the worker that did not fail.
        otherWorker.ExpectNoMsg(TimeSpan.FromMilliseconds(700));
        var second = otherWorker.ExpectMsg<RunTrial>(Wait);
        Assert.Equal((first.Trial.Id, 2), (second.Trial.Id, second.Attempt));
        firstWorker.ExpectNoMsg(TimeSpan.FromMilliseconds(100));

        End(otherWorker, Ended(second, TrialEndKind.Failed, "boom again"));
        var third = firstWorker.ExpectMsg<RunTrial>(Wait);
        Assert.Equal(3, third.Attempt);
        End(firstWorker, Ended(third, TrialEndKind.Failed, "still broken"));

        var trial = AwaitTrial(coordinator, t => t.State == TrialState.Failed);
        Assert.Equal(3, trial.Attempts);
        Assert.Equal("still broken", trial.Error);
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        b.ExpectNoMsg(TimeSpan.FromMilliseconds(10));
    }

    [Fact]
    public void A_divergence_is_recorded_and_never_retried()
    {
        var coordinator = Start(Sweep(trials: 1));
        var a = Worker("a");
        var run = a.ExpectMsg<RunTrial>(Wait);

        End(a, new TrialEnded(run.Trial.Id, run.Attempt, TrialEndKind.Diverged, 23, "loss is NaN", null));

        var trial = AwaitTrial(coordinator, t => t.State == TrialState.Diverged);
        Assert.Equal((1, 23, "loss is NaN"), (trial.Attempts, trial.DivergedAtIteration, trial.DivergenceReason));
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
    }

    [Fact]
    public void The_trial_of_a_worker_that_dies_is_requeued_at_once_to_another()
    {
        var coordinator = Start(Sweep(trials: 1));
        var (a, b) = (Worker("a"), Worker("b"));
        var (run, running, idle) = FirstAssignment(a, b);

        Sys.Stop(running.Ref);

        var again = idle.ExpectMsg<RunTrial>(Wait);
        Assert.Equal((run.Trial.Id, 2), (again.Trial.Id, again.Attempt));
        var trial = AwaitTrial(coordinator, t => t.State == TrialState.Running && t.Attempts == 2);
        Assert.Equal(idle == a ? "a" : "b", trial.WorkerId);
    }

    [Fact]
    public void Out_of_memory_with_halve_batch_requeues_half_the_batch_with_the_coupled_learning_rate()
    {
        var coordinator = Start(Sweep(trials: 1, batch: 64, lr: 0.01, onOutOfMemory: OutOfMemoryPolicy.HalveBatch, couplingExponent: -1));
        var a = Worker("a");
        var run = a.ExpectMsg<RunTrial>(Wait);

        End(a, Ended(run, TrialEndKind.OutOfMemory, "out of memory at batch 64"));

        var halved = a.ExpectMsg<RunTrial>(Wait);
        Assert.Equal((32, 64, 2), (halved.Trial.Spec.BatchSize, halved.Trial.Spec.TestBatchSize, halved.Attempt));
        Assert.Equal(0.02, halved.Trial.Spec.BaseLr, 12); // k = −1: half the batch, twice the rate
        Assert.Null(halved.ResumeFrom);
        var trial = AwaitTrial(coordinator, t => t.Definition.Spec.BatchSize == 32);
        Assert.Contains("out of memory", trial.Error);
    }

    [Fact]
    public void Out_of_memory_with_fail_fails_the_trial_for_good()
    {
        var coordinator = Start(Sweep(trials: 1, onOutOfMemory: OutOfMemoryPolicy.Fail));
        var a = Worker("a");
        var run = a.ExpectMsg<RunTrial>(Wait);

        End(a, Ended(run, TrialEndKind.OutOfMemory, "out of memory at batch 64"));

        var trial = AwaitTrial(coordinator, t => t.State == TrialState.Failed);
        Assert.Equal(1, trial.Attempts);
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
    }

    [Fact]
    public void Reports_from_an_attempt_that_is_no_longer_current_are_ignored()
    {
        var coordinator = Start(Sweep(trials: 1));
        var (a, b) = (Worker("a"), Worker("b"));
        var (run, running, idle) = FirstAssignment(a, b);
        Sys.Stop(running.Ref);
        var again = idle.ExpectMsg<RunTrial>(Wait);

        // A late word from the first attempt (say, across a partition) must not end the second.
        End(idle, Ended(run, TrialEndKind.Completed));
        idle.Send(coordinator, new TestPointReported(run.Trial.Id, run.Attempt, Metrics(100, 0.5)));

        var trial = AwaitTrial(coordinator, t => t.Attempts == 2);
        Assert.Equal(TrialState.Running, trial.State);
        Assert.Null(trial.FinalTestAccuracy);
        Complete(idle, again);
        AwaitTrial(coordinator, t => t.State == TrialState.Completed);
    }

    [Fact]
    public void Stopping_checkpoints_running_trials_persists_and_requeues_them()
    {
        var coordinator = Start(Sweep(trials: 2));
        var a = Worker("a");
        var run = a.ExpectMsg<RunTrial>(Wait);
        a.Send(coordinator, new TrialCheckpointSaved(run.Trial.Id, run.Attempt, 100, run.CheckpointPath));
        Assert.Equal(100, a.ExpectMsg<TrialCheckpointRecorded>(Wait).Iteration);

        var stopper = CreateTestProbe();
        stopper.Send(coordinator, new StopSweep());
        var stop = a.ExpectMsg<StopTrial>(Wait);
        Assert.True(stop.Checkpoint);
        End(a, new TrialEnded(run.Trial.Id, run.Attempt, TrialEndKind.Stopped, 150, null, run.CheckpointPath));

        stopper.ExpectMsg<SweepStopped>(Wait);
        var stopped = StateOf(coordinator);
        Assert.Equal(SweepPhase.Interrupted, stopped.Phase);
        var trial = stopped.Trials.Single(t => t.Definition.Id == run.Trial.Id);
        Assert.Equal((TrialState.Queued, 100, run.CheckpointPath), (trial.State, trial.CheckpointIteration, trial.CheckpointPath));
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // no new work while stopped
    }

    [Fact]
    public async Task After_a_restart_on_the_same_database_the_state_is_recovered_and_the_running_trial_continues_from_its_checkpoint()
    {
        // Snapshots every 2 events: recovery goes through a snapshot and the events after it.
        var coordinator = Start(Sweep(trials: 2), sweepId: "restart", snapshotEvery: 2);
        var a = Worker("a");
        var first = a.ExpectMsg<RunTrial>(Wait);
        a.Send(coordinator, new TestPointReported(first.Trial.Id, 1, Metrics(0, 0.1)));
        a.Send(coordinator, new TestPointReported(first.Trial.Id, 1, Metrics(100, 0.9)));
        Complete(a, first);
        var second = a.ExpectMsg<RunTrial>(Wait);
        a.Send(coordinator, new TrialCheckpointSaved(second.Trial.Id, 1, 100, second.CheckpointPath));
        var before = AwaitTrial(coordinator, t => t.Definition.Id == second.Trial.Id && t.CheckpointIteration == 100, second.Trial.Id);
        await Sys.Terminate();

        // A new actor system (a new process, as after kill -9) on the same SQLite file.
        await using var restarted = await SweepSystem.StartAsync(journal.Settings);
        var recovered = await SweepJournal.ReadAsync(journal.Settings, "restart");
        Assert.NotNull(recovered);
        Assert.Equal(TrialState.Completed, recovered![first.Trial.Id].State);
        Assert.Equal(0.9, recovered[first.Trial.Id].FinalTestAccuracy);
        Assert.Equal(before with { NotBefore = recovered[second.Trial.Id].NotBefore }, recovered[second.Trial.Id]);

        var again = restarted.System.ActorOf(SweepCoordinator.Props("restart", new CoordinatorSettings(journal.Settings.CheckpointDirectory)));
        var probe = new TestProbe(restarted.System, new Akka.TestKit.Xunit2.XunitAssertions());
        // The journal's reader (the tables, read directly) and the coordinator's own recovery (Akka's) agree on the whole state.
        probe.Send(again, new GetSweepState());
        Assert.Equal(Json(recovered.ToSnapshot()), Json(probe.ExpectMsg<SweepSnapshot>(Wait)));
        // And at every event: the latest snapshot at or before it plus the events after it is the state the events alone build.
        var events = await SweepJournal.EventsAsync(journal.Settings, "restart");
        var folded = SweepState.Start((SweepStarted)events[0]);
        for (int n = 1; n <= events.Count; n++)
        {
            if (n > 1) folded.Apply(events[n - 1]);
            Assert.Equal(Json(folded.ToSnapshot()), Json((await SweepJournal.ReadAsync(journal.Settings, "restart", toSequenceNr: n))!.ToSnapshot()));
        }
        probe.Send(again, new ResumeSweep());
        Assert.Equal(1, probe.ExpectMsg<SweepAccepted>(Wait).Remaining);
        probe.Send(again, new RegisterWorker(new WorkerSlot("c", "node", "cpu", 1), null, "incarnation-1", SlotHealth.NotNeeded));
        probe.ExpectMsg<WorkerRegistered>(Wait);
        var resumed = probe.ExpectMsg<RunTrial>(Wait);
        Assert.Equal((second.Trial.Id, 2, second.CheckpointPath), (resumed.Trial.Id, resumed.Attempt, resumed.ResumeFrom));
    }

    [Fact]
    public void A_repeated_registration_keeps_the_running_attempt_and_a_restarted_worker_loses_it()
    {
        var coordinator = Start(Sweep(trials: 1));
        var a = Worker("a");
        var run = a.ExpectMsg<RunTrial>(Wait);

        a.Send(coordinator, new RegisterWorker(new WorkerSlot("a", "node-a", "cpu", 1), null, "incarnation-1", SlotHealth.NotNeeded));
        a.ExpectMsg<WorkerRegistered>(Wait);
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        Assert.Equal(1, AwaitTrial(coordinator, t => t.State == TrialState.Running).Attempts);

        a.Send(coordinator, new RegisterWorker(new WorkerSlot("a", "node-a", "cpu", 1), null, "incarnation-2", SlotHealth.NotNeeded));
        a.ExpectMsg<WorkerRegistered>(Wait);
        var again = a.ExpectMsg<RunTrial>(Wait);
        Assert.Equal((run.Trial.Id, 2), (again.Trial.Id, again.Attempt));
    }

    [Fact]
    public void A_missing_checkpoint_is_recorded_as_a_restart_from_scratch()
    {
        var coordinator = Start(Sweep(trials: 1));
        var a = Worker("a");
        var run = a.ExpectMsg<RunTrial>(Wait);
        a.Send(coordinator, new TrialCheckpointSaved(run.Trial.Id, 1, 50, run.CheckpointPath));
        AwaitTrial(coordinator, t => t.CheckpointIteration == 50);

        a.Send(coordinator, new TrialCheckpointMissing(run.Trial.Id, 1, run.CheckpointPath));

        var trial = AwaitTrial(coordinator, t => t.CheckpointPath is null);
        Assert.Equal((0, 0), (trial.CheckpointIteration, trial.Iteration));
    }

    [Fact]
    public void A_damaged_checkpoint_is_recorded_with_its_reason_and_no_later_attempt_is_given_it()
    {
        var coordinator = Start(Sweep(trials: 1));
        var subscriber = CreateTestProbe();
        subscriber.Send(coordinator, new SubscribeToSweep());
        var a = Worker("a");
        var first = a.ExpectMsg<RunTrial>(Wait);
        var journalled = first.CheckpointPath.Replace(".ckpt", ".it000000050.ckpt");
        a.Send(coordinator, new TrialCheckpointSaved(first.Trial.Id, 1, 50, journalled));
        a.ExpectMsg<TrialCheckpointRecorded>(Wait);
        End(a, Ended(first, TrialEndKind.Failed, "boom"));
        var second = a.ExpectMsg<RunTrial>(Wait);
        Assert.Equal((2, journalled), (second.Attempt, second.ResumeFrom));

        const string reason = "damaged checkpoint (EndOfStreamException: Unable to read beyond the end of the stream.)";
        a.Send(coordinator, new TrialCheckpointMissing(first.Trial.Id, 2, journalled, reason));

        var restarted = subscriber.FishForMessage<TrialRestartedFromScratch>(_ => true, Wait);
        Assert.Equal((first.Trial.Id, 2, journalled, reason), (restarted.TrialId, restarted.Attempt, restarted.Path, restarted.Reason));
        var trial = AwaitTrial(coordinator, t => t.CheckpointPath is null);
        Assert.Equal((0, 0, 2), (trial.CheckpointIteration, trial.Iteration, trial.Attempts));
        End(a, Ended(second, TrialEndKind.Failed, "boom again"));
        var third = a.ExpectMsg<RunTrial>(Wait);
        Assert.Equal((3, null), (third.Attempt, third.ResumeFrom));
        var started = subscriber.FishForMessage<TrialStarted>(e => e.Attempt == 3, Wait);
        Assert.Equal(0, started.FromIteration);
    }

    [Fact]
    public void A_checkpoint_is_acknowledged_to_the_worker_that_saved_it_only_once_it_is_in_the_journal()
    {
        var coordinator = Start(Sweep(trials: 1));
        var subscriber = CreateTestProbe();
        subscriber.Send(coordinator, new SubscribeToSweep());
        var a = Worker("a");
        var run = a.ExpectMsg<RunTrial>(Wait);
        var at100 = run.CheckpointPath.Replace(".ckpt", ".it000000100.ckpt");

        a.Send(coordinator, new TrialCheckpointSaved(run.Trial.Id, run.Attempt, 100, at100));
        a.Send(coordinator, new TrialCheckpointSaved(run.Trial.Id, run.Attempt + 1, 150, at100)); // not the running attempt

        Assert.Equal(new TrialCheckpointRecorded(run.Trial.Id, run.Attempt, 100), a.ExpectMsg<TrialCheckpointRecorded>(Wait));
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        // The subscriber hears each event once it is persisted: the acknowledged checkpoint is there, and only it.
        var recorded = subscriber.FishForMessage<TrialCheckpointed>(_ => true, Wait);
        Assert.Equal((run.Trial.Id, run.Attempt, 100, at100), (recorded.TrialId, recorded.Attempt, recorded.Iteration, recorded.Path));
        subscriber.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        var trial = AwaitTrial(coordinator, t => t.CheckpointIteration == 100);
        Assert.Equal(at100, trial.CheckpointPath);
    }

    [Fact]
    public void Reports_sent_again_while_the_first_copies_are_being_written_are_recorded_once_and_the_end_is_acknowledged_once_written()
    {
        var coordinator = Start(Sweep(trials: 1), sweepId: "twice");
        var subscriber = CreateTestProbe();
        subscriber.Send(coordinator, new SubscribeToSweep());
        var a = Worker("a");
        var run = a.ExpectMsg<RunTrial>(Wait);
        var at50 = run.CheckpointPath.Replace(".ckpt", ".it000000050.ckpt");
        ISweepMessage[] attempt =
        [
            new TestPointReported(run.Trial.Id, 1, Metrics(0, 0.1)),
            new TestPointReported(run.Trial.Id, 1, Metrics(50, 0.5)),
            new TrialCheckpointSaved(run.Trial.Id, 1, 50, at50),
            new TestPointReported(run.Trial.Id, 1, Metrics(100, 0.9)),
            Ended(run, TrialEndKind.Completed),
        ];

        // Everything twice, back to back (a worker sending what a dead coordinator never acknowledged), then once more.
        foreach (var report in attempt.Concat(attempt)) a.Send(coordinator, report);
        var answered = a.FishForMessage<TrialEndRecorded>(_ => true, Wait);
        subscriber.FishForMessage<SweepFinished>(_ => true, Wait);
        foreach (var report in attempt) a.Send(coordinator, report);

        Assert.Equal(new TrialEndRecorded(run.Trial.Id, 1), answered);
        Assert.Equal(new TrialEndRecorded(run.Trial.Id, 1), a.FishForMessage<TrialEndRecorded>(_ => true, Wait)); // the journal has it: answered at once
        var events = PersistedEvents("twice");
        Assert.Equal(new[] { 0, 50, 100 }, events.OfType<TrialProgress>().Select(e => e.Metrics.Iteration));
        Assert.Equal(50, Assert.Single(events.OfType<TrialCheckpointed>()).Iteration);
        Assert.Equal(1, Assert.Single(events.OfType<TrialCompleted>()).Attempt);
        Assert.Single(events.OfType<SweepCompleted>());
    }

    [Fact]
    public void A_new_coordinator_records_the_end_of_an_attempt_its_predecessor_never_heard_of_once_the_worker_registers()
    {
        var settings = new CoordinatorSettings(journal.Settings.CheckpointDirectory, OrphanGrace: TimeSpan.FromMinutes(5));
        var first = Sys.ActorOf(SweepCoordinator.Props("successor", settings));
        first.Tell(new StartSweep(Sweep(trials: 2)));
        ExpectMsg<SweepAccepted>(Wait);
        var a = CreateTestProbe("a");
        var slot = new WorkerSlot("a", "node-a", "cpu", 1);
        a.Send(first, new RegisterWorker(slot, null, "incarnation-1", SlotHealth.NotNeeded));
        a.ExpectMsg<WorkerRegistered>(Wait);
        var run = a.ExpectMsg<RunTrial>(Wait);
        a.Send(first, new TestPointReported(run.Trial.Id, 1, Metrics(0, 0.1)));
        a.Send(first, new TrialCheckpointSaved(run.Trial.Id, 1, 50, run.CheckpointPath.Replace(".ckpt", ".it000000050.ckpt")));
        a.ExpectMsg<TrialCheckpointRecorded>(Wait);

        // The coordinator dies (its node killed); the attempt ends meanwhile, unheard.
        Watch(first);
        Sys.Stop(first);
        ExpectTerminated(first, Wait);
        var successor = Sys.ActorOf(SweepCoordinator.Props("successor", settings));
        var subscriber = CreateTestProbe();
        subscriber.Send(successor, new SubscribeToSweep());
        subscriber.ExpectMsg<SweepSubscribed>(Wait);

        // Before the worker registers with it, the successor takes nothing from it (it sends it all again once registered).
        a.Send(successor, Ended(run, TrialEndKind.Completed));
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        // Registered idle, the worker sends what was not acknowledged: the test points after the checkpoint, and the end.
        a.Send(successor, new RegisterWorker(slot, null, "incarnation-1", SlotHealth.NotNeeded));
        a.ExpectMsg<WorkerRegistered>(Wait);
        a.Send(successor, new TestPointReported(run.Trial.Id, 1, Metrics(50, 0.5)));
        a.Send(successor, new TestPointReported(run.Trial.Id, 1, Metrics(100, 0.9)));
        a.Send(successor, Ended(run, TrialEndKind.Completed));

        var next = a.ExpectMsg<RunTrial>(Wait); // idle, it is given the other trial at once; the first waits for its worker, not re-queued
        Assert.NotEqual(run.Trial.Id, next.Trial.Id);
        Assert.Equal(new TrialEndRecorded(run.Trial.Id, 1), a.ExpectMsg<TrialEndRecorded>(Wait));
        var trial = AwaitTrial(successor, t => t.Definition.Id == run.Trial.Id && t.State == TrialState.Completed);
        Assert.Equal((1, 0.9), (trial.Attempts, trial.FinalTestAccuracy));
        var events = PersistedEvents("successor");
        Assert.Equal(new[] { 0, 50, 100 }, events.OfType<TrialProgress>().Where(e => e.TrialId == run.Trial.Id).Select(e => e.Metrics.Iteration));
        Assert.DoesNotContain(events, e => e is TrialRequeued);
    }

    [Fact]
    public void Starting_a_sweep_id_that_exists_is_refused_and_persists_nothing()
    {
        var coordinator = Start(Sweep(trials: 1), sweepId: "taken");
        var again = Sys.ActorOf(SweepCoordinator.Props("taken", new CoordinatorSettings(journal.Settings.CheckpointDirectory)));

        again.Tell(new StartSweep(Sweep(trials: 5)));

        Assert.Contains("already exists", ExpectMsg<SweepRefused>(Wait).Reason);
        coordinator.Tell(new GetSweepState());
        Assert.Single(ExpectMsg<SweepSnapshot>(Wait).Trials);
    }

    [Fact]
    public void Resuming_an_unknown_sweep_is_refused()
    {
        var coordinator = Sys.ActorOf(SweepCoordinator.Props("nothing-here", new CoordinatorSettings(journal.Settings.CheckpointDirectory)));
        coordinator.Tell(new ResumeSweep());
        Assert.Contains("no sweep 'nothing-here'", ExpectMsg<SweepRefused>(Wait).Reason);
    }

    [Fact]
    public void An_unhealthy_slot_is_recorded_once_with_its_reason_and_never_given_a_trial()
    {
        var coordinator = Start(Sweep(trials: 3));
        var subscriber = CreateTestProbe();
        subscriber.Send(coordinator, new SubscribeToSweep());
        var sick = Worker("sick", Unhealthy);
        var well = Worker("well");
        // Registering again (the periodic retry) records nothing new.
        sick.Send(coordinator, new RegisterWorker(new WorkerSlot("sick", "node-sick", "cpu", 1), null, "incarnation-1", Unhealthy));
        sick.ExpectMsg<WorkerRegistered>(Wait);

        for (int i = 0; i < 3; i++) Complete(well, well.ExpectMsg<RunTrial>(Wait));

        // The subscriber hears every event as it is persisted: each slot's verdict exactly once.
        var recorded = new List<string>();
        subscriber.FishForMessage(m =>
        {
            if (m is SlotChecked checkedSlot) recorded.Add(checkedSlot.Slot.WorkerId);
            return m is SweepFinished;
        }, Wait);
        sick.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        Assert.Equal(["sick", "well"], recorded.Order());
        var finished = StateOf(coordinator);
        Assert.All(finished.Trials, t => Assert.Equal(TrialState.Completed, t.State));
        var slots = finished.Slots!.ToDictionary(s => s.Slot.WorkerId);
        Assert.Equal((false, Unhealthy.Summary), (slots["sick"].Health.Healthy, slots["sick"].Health.Summary));
        Assert.True(slots["well"].Health.Healthy);
    }

    [Fact]
    public void Local_mode_halts_with_the_reason_once_every_expected_slot_is_unhealthy()
    {
        var coordinator = Start(Sweep(trials: 2));
        var subscriber = CreateTestProbe();
        subscriber.Send(coordinator, new SubscribeToSweep());
        coordinator.Tell(new ExpectLocalSlots(2));
        var first = Worker("cpu-1", Unhealthy);
        subscriber.FishForMessage<SlotChecked>(_ => true, Wait);
        subscriber.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // one of two: a healthy one may still come

        Worker("cpu-2", Unhealthy);

        subscriber.FishForMessage<SlotChecked>(e => e.Slot.WorkerId == "cpu-2", Wait);
        var interrupted = subscriber.ExpectMsg<SweepInterrupted>(Wait);
        var halted = subscriber.ExpectMsg<SweepHalted>(Wait);
        Assert.StartsWith("no healthy worker slot: none of the 2 takes trials", halted.Reason);
        Assert.Contains(Unhealthy.Summary, halted.Reason);
        Assert.Equal(halted.Reason, interrupted.Reason);
        var state = StateOf(coordinator);
        Assert.Equal(SweepPhase.Interrupted, state.Phase);
        Assert.Equal(halted.Reason, state.InterruptReason);
        Assert.All(state.Trials, t => Assert.Equal((TrialState.Queued, 0), (t.State, t.Attempts)));
        first.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void Without_an_expected_slot_count_a_cluster_waits_for_a_healthy_worker_instead_of_halting()
    {
        var coordinator = Start(Sweep(trials: 1));
        var subscriber = CreateTestProbe();
        subscriber.Send(coordinator, new SubscribeToSweep());
        Worker("sick-1", Unhealthy);
        Worker("sick-2", Unhealthy);
        subscriber.ExpectMsg<SweepSubscribed>(Wait);
        subscriber.FishForMessage<SlotChecked>(e => e.Slot.WorkerId == "sick-2", Wait);
        subscriber.ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        var joined = Worker("healthy");

        Assert.Equal(1, joined.ExpectMsg<RunTrial>(Wait).Attempt);
    }

    [Fact]
    public void A_leaving_worker_gets_no_further_trials_and_the_trial_it_stopped_runs_on_another()
    {
        var coordinator = Start(Sweep(trials: 3));
        var (a, b) = (Worker("a"), Worker("b"));
        var first = a.ExpectMsg<RunTrial>(Wait);
        var second = b.ExpectMsg<RunTrial>(Wait);

        // As TrialWorker leaves: unregister, then hand the running attempt back with a checkpoint.
        a.Send(coordinator, new WorkerLeaving(new WorkerSlot("a", "node-a", "cpu", 1), "incarnation-1"));
        End(a, new TrialEnded(first.Trial.Id, first.Attempt, TrialEndKind.Stopped, 40, "worker a left", null));

        a.ExpectNoMsg(TimeSpan.FromMilliseconds(500)); // idle, two trials queued, and still nothing for it
        Complete(b, second);
        var third = b.ExpectMsg<RunTrial>(Wait);
        Complete(b, third);
        var fourth = b.ExpectMsg<RunTrial>(Wait);
        Complete(b, fourth);

        a.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        var rerun = new[] { third, fourth }.Single(r => r.Trial.Id == first.Trial.Id);
        Assert.Equal(2, rerun.Attempt); // the stopped run did start: it counts as an attempt, not as a failure
        var trial = AwaitTrial(coordinator, t => t.State == TrialState.Completed, first.Trial.Id);
        Assert.Equal((2, 0), (trial.Attempts, trial.Failures));
    }

    [Fact]
    public void A_trial_handed_back_before_it_started_keeps_its_attempt_count_and_its_worker_gets_no_more()
    {
        var coordinator = Start(Sweep(trials: 2, retry: new RetryPolicy(MaxAttempts: 1, BackoffSeconds: 0.2)));
        var (a, b) = (Worker("a"), Worker("b"));
        var refused = a.ExpectMsg<RunTrial>(Wait);
        var other = b.ExpectMsg<RunTrial>(Wait);

        // The worker was leaving when the trial reached it (its WorkerLeaving crossed the RunTrial).
        End(a, new TrialEnded(refused.Trial.Id, refused.Attempt, TrialEndKind.HandedBack, 0, "worker a is leaving", null));
        AwaitTrial(coordinator, t => t.State == TrialState.Queued && t.Attempts == 0, refused.Trial.Id);
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        Complete(b, other);

        var again = b.ExpectMsg<RunTrial>(Wait);
        Assert.Equal((refused.Trial.Id, 1), (again.Trial.Id, again.Attempt));
        Complete(b, again);
        var trial = AwaitTrial(coordinator, t => t.State == TrialState.Completed, refused.Trial.Id);
        Assert.Equal(1, trial.Attempts);
        a.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        var handedBack = Assert.Single(PersistedEvents("test").OfType<TrialHandedBack>());
        Assert.Equal((refused.Trial.Id, 1, "a"), (handedBack.TrialId, handedBack.Attempt, handedBack.WorkerId));
    }

    [Fact]
    public void A_run_stopped_because_its_worker_left_uses_up_no_retry()
    {
        var coordinator = Start(Sweep(trials: 1, retry: new RetryPolicy(MaxAttempts: 2, BackoffSeconds: 0.2)));
        var (a, b) = (Worker("a"), Worker("b"));
        var (first, leaving, staying) = FirstAssignment(a, b);
        var leavingId = leaving == a ? "a" : "b";
        leaving.Send(coordinator, new WorkerLeaving(new WorkerSlot(leavingId, "node-" + leavingId, "cpu", 1), "incarnation-1"));
        End(leaving, new TrialEnded(first.Trial.Id, first.Attempt, TrialEndKind.Stopped, 40, $"worker {leavingId} left", null));

        var second = staying.ExpectMsg<RunTrial>(Wait);
        End(staying, Ended(second, TrialEndKind.Failed, "boom"));
        var third = staying.ExpectMsg<RunTrial>(Wait); // max-attempts 2: one failure leaves one retry

        Assert.Equal((2, 3), (second.Attempt, third.Attempt));
        End(staying, Ended(third, TrialEndKind.Failed, "boom again"));
        var trial = AwaitTrial(coordinator, t => t.State == TrialState.Failed);
        Assert.Equal((3, 2, "boom again"), (trial.Attempts, trial.Failures, trial.Error));
        leaving.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    private static readonly SlotHealth Unhealthy = new(false, "self-test failed on cpu (1 thread): training conv2 output off by 1.7e-01 relative to float64 (tolerance 1e-04)");

    // ---- helpers ----

    [Fact]
    public void A_claim_lost_to_another_process_stops_the_running_trials_and_says_why_without_persisting_more()
    {
        var held = true;
        var lease = new SweepLease(
            Adopt: () => Task.FromResult(new LeaseCheck(true)),
            Renew: () => Task.FromResult(held ? new LeaseCheck(true) : new LeaseCheck(false, "gpu-box pid 9 holds it since 14:03")),
            RenewEvery: TimeSpan.FromMilliseconds(100),
            Lapse: TimeSpan.FromSeconds(30));
        var coordinator = Sys.ActorOf(SweepCoordinator.Props("leased", new CoordinatorSettings(journal.Settings.CheckpointDirectory, LeaseFor: _ => lease)));
        coordinator.Tell(new StartSweep(Sweep(trials: 2)));
        ExpectMsg<SweepAccepted>(Wait);
        lastCoordinator = coordinator;
        var subscriber = CreateTestProbe();
        subscriber.Send(coordinator, new SubscribeToSweep());
        var worker = Worker("a");
        var run = worker.ExpectMsg<RunTrial>(Wait);
        Watch(coordinator);

        held = false;
        var stop = worker.FishForMessage<StopTrial>(_ => true, Wait);
        Assert.Equal((run.Trial.Id, run.Attempt, true), (stop.TrialId, stop.Attempt, stop.Checkpoint));
        var failed = subscriber.FishForMessage<SweepJournalFailed>(_ => true, Wait);
        Assert.Equal(("leased", "another process took sweep leased over: gpu-box pid 9 holds it since 14:03"), (failed.SweepId, failed.Cause));
        ExpectTerminated(coordinator, Wait);

        // What the worker reports afterwards is not recorded: the journal ends where the claim was lost.
        var events = PersistedEvents("leased");
        Assert.Equal(typeof(TrialStarted), events[^1].GetType());
    }

    [Fact]
    public void A_coordinator_that_cannot_adopt_the_claim_persists_nothing_and_refuses_to_run()
    {
        var lease = new SweepLease(
            Adopt: () => Task.FromResult(new LeaseCheck(false, "gpu-box pid 9 since 2026-11-30 14:03:00")),
            Renew: () => Task.FromResult(new LeaseCheck(true)),
            RenewEvery: TimeSpan.FromSeconds(1),
            Lapse: TimeSpan.FromSeconds(30));
        var listener = CreateTestProbe();
        Sys.EventStream.Subscribe(listener.Ref, typeof(SweepJournalFailed));
        var coordinator = Sys.ActorOf(SweepCoordinator.Props("not-mine", new CoordinatorSettings(journal.Settings.CheckpointDirectory, LeaseFor: _ => lease)));
        Watch(coordinator);
        coordinator.Tell(new StartSweep(Sweep(trials: 1)));
        var failed = listener.ExpectMsg<SweepJournalFailed>(Wait);
        Assert.Equal("another process owns sweep not-mine: gpu-box pid 9 since 2026-11-30 14:03:00", failed.Cause);
        ExpectTerminated(coordinator, Wait);
        Assert.Empty(PersistedEvents("not-mine"));
    }

    /// <summary>What the journal holds for a sweep, read the way status reads it.</summary>
    private IReadOnlyList<ISweepEvent> PersistedEvents(string sweepId) => SweepJournal.EventsAsync(journal.Settings, sweepId).GetAwaiter().GetResult();

    private static string Json(SweepSnapshot snapshot) => System.Text.Json.JsonSerializer.Serialize(snapshot, global::Sweep.Protocol.Serialization.SweepSerializer.Json);

    private IActorRef Start(SweepDefinition definition, string sweepId = "test", int snapshotEvery = 500)
    {
        var coordinator = Sys.ActorOf(SweepCoordinator.Props(sweepId, new CoordinatorSettings(journal.Settings.CheckpointDirectory, snapshotEvery)));
        coordinator.Tell(new StartSweep(definition));
        ExpectMsg<SweepAccepted>(Wait);
        lastCoordinator = coordinator;
        return coordinator;
    }

    private IActorRef? lastCoordinator;

    private TestProbe Worker(string id, SlotHealth? health = null)
    {
        var probe = CreateTestProbe(id);
        probe.Send(lastCoordinator!, new RegisterWorker(new WorkerSlot(id, "node-" + id, "cpu", 1), null, "incarnation-1", health ?? SlotHealth.NotNeeded));
        probe.ExpectMsg<WorkerRegistered>(Wait);
        return probe;
    }

    /// <summary>Whichever of two idle workers got the single trial, and the other.</summary>
    private (RunTrial Run, TestProbe Running, TestProbe Idle) FirstAssignment(TestProbe a, TestProbe b)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (DateTime.UtcNow < deadline)
        {
            if (a.HasMessages) return (a.ExpectMsg<RunTrial>(), a, b);
            if (b.HasMessages) return (b.ExpectMsg<RunTrial>(), b, a);
            Thread.Sleep(20);
        }
        throw new TimeoutException("no worker got the trial");
    }

    private void Complete(TestProbe worker, RunTrial run) => End(worker, Ended(run, TrialEndKind.Completed));

    /// <summary>The worker reports the end; the coordinator acknowledges it (once written, or at once for an end it has or never will record).</summary>
    private void End(TestProbe worker, TrialEnded ended)
    {
        worker.Send(lastCoordinator!, ended);
        Assert.Equal(new TrialEndRecorded(ended.TrialId, ended.Attempt), worker.ExpectMsg<TrialEndRecorded>(Wait));
    }

    private static TrialEnded Ended(RunTrial run, TrialEndKind kind, string? reason = null) =>
        new(run.Trial.Id, run.Attempt, kind, run.Trial.Spec.MaxIter, reason, null);

    private static TrialMetrics Metrics(int iteration, double testAccuracy) => new(iteration, 1.0, 0.5, 1.0, testAccuracy, 0.01, 0.5, 1000);

    private TrialRecord AwaitTrial(IActorRef coordinator, Func<TrialRecord, bool> condition, string? trialId = null)
    {
        TrialRecord? found = null;
        AwaitAssert(() =>
        {
            coordinator.Tell(new GetSweepState(), TestActor);
            var snapshot = ExpectMsg<SweepSnapshot>(Wait);
            found = snapshot.Trials.FirstOrDefault(t => (trialId is null || t.Definition.Id == trialId) && condition(t));
            Assert.NotNull(found);
        }, Wait, TimeSpan.FromMilliseconds(100));
        return found!;
    }

    private static SweepDefinition Sweep(
        int trials,
        int batch = 64,
        double lr = 0.01,
        RetryPolicy? retry = null,
        OutOfMemoryPolicy onOutOfMemory = OutOfMemoryPolicy.Fail,
        double couplingExponent = -1) =>
        new(
            "coordinator-test",
            "test",
            ModelKind.Synthetic,
            Enumerable.Range(1, trials)
                .Select(i => new TrialDefinition($"trial-{i}", $"t{i}", new TrialSpec(batch, 2 * batch, lr, 100, 50, i, new SolverSpec(), new DatasetSpec("unused"))))
                .ToList(),
            new DivergencePolicy(),
            retry ?? new RetryPolicy(MaxAttempts: 3, BackoffSeconds: 0.2),
            onOutOfMemory,
            couplingExponent,
            new SyntheticSpec());

    /// <summary>A fresh data directory with a real SQLite journal, deleted afterwards.</summary>
    private sealed class JournalFixture : IDisposable
    {
        public JournalSettings Settings { get; } = new(Directory.CreateTempSubdirectory("sweep-coordinator-").FullName);

        public SweepSystem Start() => SweepSystem.StartAsync(Settings).GetAwaiter().GetResult();

        public void Dispose()
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            try
            {
                Directory.Delete(Settings.DataDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The coordinator's state, asked in-process (<see cref="GetSweepState"/>).</summary>
    private SweepSnapshot StateOf(IActorRef coordinator)
    {
        var asker = CreateTestProbe();
        asker.Send(coordinator, new GetSweepState());
        return asker.ExpectMsg<SweepSnapshot>(Wait);
    }
}
