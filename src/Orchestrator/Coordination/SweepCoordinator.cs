using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Sweep.GpuWorker.Logging;
using Sweep.Orchestrator.Hosting;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Coordination;

/// <summary>Where the coordinator keeps trial checkpoints and how it snapshots and adopts.</summary>
/// <param name="CheckpointDirectory">Checkpoints go to DIR/SWEEP-ID/TRIAL-ID.itNNNNNNNNN.ckpt, one file per checkpoint iteration (a shared path in a cluster).</param>
/// <param name="SnapshotEvery">Save a snapshot after this many events (at least as many as the sweep has trials), so recovery replays few.</param>
/// <param name="OrphanGrace">
/// After a restart, how long trials the journal shows as running wait for their worker to
/// re-register and claim them before they are re-queued (0 on one machine: those workers died with the process).
/// </param>
/// <param name="LeaseFor">The sweep's ownership claim in the journal (<see cref="SweepLease"/>), kept by the coordinator wherever it runs; null: none (tests).</param>
public sealed record CoordinatorSettings(string CheckpointDirectory, int SnapshotEvery = 500, TimeSpan OrphanGrace = default, Func<string, SweepLease>? LeaseFor = null);

/// <summary>The answer of a lease check: whether this process holds the sweep, and if not, why (who holds it, or what failed).</summary>
public sealed record LeaseCheck(bool Held, string? Why = null, Exception? Error = null);

/// <summary>
/// A sweep's ownership claim as the coordinator keeps it: <see cref="Adopt"/> once it has
/// recovered (the claim is this process's already, or its owner is gone, e.g. the node of a
/// previous coordinator), then <see cref="Renew"/> every <see cref="RenewEvery"/>. A claim lost to
/// another process, or not renewable for <see cref="Lapse"/>, stops the sweep here (another may own it now).
/// </summary>
public sealed record SweepLease(Func<Task<LeaseCheck>> Adopt, Func<Task<LeaseCheck>> Renew, TimeSpan RenewEvery, TimeSpan Lapse);

/// <summary>
/// One sweep's coordinator: the journal is its durable queue. It hands queued trials to registered
/// workers (one attempt in flight per worker), persists every trial event before acting on it,
/// retries failures with back-off on another worker when there is one, never retries a divergence,
/// follows the on-out-of-memory policy, re-queues the trial of a worker that dies (DeathWatch), gives
/// a worker that is leaving no more trials (an attempt it hands back unstarted does not count), and
/// after a restart re-queues what nobody claims: no trial is left running with nobody running it.
/// Workers send what it has not acknowledged again (to a new coordinator after a hand-over): each
/// report is recorded once (<see cref="WorkerReportPolicy"/>), and each end is acknowledged
/// (<see cref="TrialEndRecorded"/>) once the journal holds it.
/// </summary>
public sealed class SweepCoordinator : ReceivePersistentActor, IWithTimers
{
    private const string DispatchTimer = "dispatch";
    private const string OrphanTimer = "orphans";
    private const string LeaseTimer = "lease";

    private readonly string sweepId;
    private readonly CoordinatorSettings settings;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private readonly Dictionary<IActorRef, WorkerSeat> workers = [];
    private readonly HashSet<IActorRef> subscribers = [];
    private readonly Dictionary<string, string> lastWorkerByTrial = [];
    private readonly HashSet<string> orphans = [];

    // Events are written with PersistAsync so that many commands' events share one journal
    // transaction. Until a trial's events are applied they wait here, and decisions see the trial as
    // it will be once they are (Projected): it is never handed out twice, ended twice, or given the
    // same report twice.
    private readonly Dictionary<string, List<ITrialEvent>> unapplied = [];
    private SweepState? state;
    // The early-stopping policy's state over every test point handed to the journal, in order (the
    // applied state's Stopping plus those being written): the fold the next decision is made on.
    private EarlyStopping? deciding;
    // The parts of a StartSweep received so far (a large definition travels in parts).
    private IReadOnlyList<StartSweep> startParts = [];
    private IActorRef? stopRequester;
    private int eventsSinceSnapshot;
    private bool completing;
    private bool stopped;
    private bool halted;
    private int? expectedLocalSlots;
    private readonly SweepLease? lease;
    private bool renewing;
    private DateTimeOffset leaseHeldAt = DateTimeOffset.UtcNow;
    private bool abandoned;

    // Slot verdicts being persisted (PersistAsync): so a second registration meanwhile does not record them twice.
    private readonly Dictionary<string, (WorkerSlot Slot, SlotHealth Health)> recordingSlots = [];

    /// <summary>A registered worker, its self-test's verdict, the attempt it runs, if any, and whether it is leaving.</summary>
    private sealed record WorkerSeat(WorkerSlot Slot, string Incarnation, SlotHealth Health)
    {
        public (string TrialId, int Attempt)? Running { get; set; }

        /// <summary>The worker said it is leaving (<see cref="WorkerLeaving"/>, or an attempt handed back): it gets no more trials.</summary>
        public bool Leaving { get; set; }

        public bool TakesTrials => !Leaving && SlotHealthPolicy.TakesTrials(Health);
    }

    private sealed record DispatchDue;

    private sealed record OrphansDue;

    private sealed record RenewDue;

    private sealed record LeaseAdopted(LeaseCheck Check);

    private sealed record LeaseRenewed(LeaseCheck Check);

    public SweepCoordinator(string sweepId, CoordinatorSettings settings)
    {
        this.sweepId = sweepId;
        this.settings = settings;
        lease = settings.LeaseFor?.Invoke(sweepId);

        Recover<SnapshotOffer>(offer => state = SweepState.FromSnapshot((SweepSnapshot)offer.Snapshot));
        Recover<SweepStarted>(started => state = SweepState.Start(started));
        Recover<ISweepEvent>(e => state!.Apply(e));
        Recover<RecoveryCompleted>(_ => OnRecovered());

        Command<StartSweep>(HandleStart);
        Command<ResumeSweep>(_ => HandleResume());
        Command<SubscribeToSweep>(_ => HandleSubscribe());
        Command<GetSweepState>(_ => Sender.Tell(state is null ? new SweepRefused(sweepId, $"no sweep '{sweepId}' in the journal") : state.ToSnapshot()));
        Command<RegisterWorker>(HandleRegister);
        Command<WorkerLeaving>(HandleLeaving);
        Command<ExpectLocalSlots>(expect =>
        {
            expectedLocalSlots = expect.Count;
            HaltIfNoHealthySlot();
        });
        Command<TestPointReported>(HandleProgress);
        Command<TrialCheckpointSaved>(HandleCheckpoint);
        Command<TrialCheckpointMissing>(HandleCheckpointMissing);
        Command<TrialEnded>(HandleEnded);
        Command<Terminated>(HandleTerminated);
        Command<StopSweep>(_ => HandleStop());
        Command<DispatchDue>(_ => Dispatch());
        Command<OrphansDue>(_ => RequeueOrphans());
        Command<SaveSnapshotSuccess>(success => DeleteSnapshots(new SnapshotSelectionCriteria(success.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(failure => log.Warning("snapshot of sweep {0} failed: {1}", sweepId, failure.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(failure => log.Warning("deleting old snapshots of sweep {0} failed: {1}", sweepId, failure.Cause.Message));
        Command<RenewDue>(_ => RenewLease());
        Command<LeaseRenewed>(renewed => HandleRenewed(renewed.Check));
    }

    public override string PersistenceId => PersistenceIdFor(sweepId);


    public ITimerScheduler Timers { get; set; } = null!;

    public static string PersistenceIdFor(string sweepId) => "sweep-" + sweepId;

    public static Props Props(string sweepId, CoordinatorSettings settings) => Akka.Actor.Props.Create(() => new SweepCoordinator(sweepId, settings));

    private void OnRecovered()
    {
        if (lease is not null) AdoptLease(lease);
        if (state is null) return;
        foreach (var trial in state.Running) orphans.Add(trial.Definition.Id);
        if (orphans.Count == 0) return;
        log.Info("sweep {0}: {1} trial(s) were running when the coordinator stopped; they wait {2} for their workers", sweepId, orphans.Count, settings.OrphanGrace);
        Timers.StartSingleTimer(OrphanTimer, new OrphansDue(), settings.OrphanGrace);
    }

    /// <summary>Until the claim is known to be this process's, every command waits (stashed): nothing is persisted by a process that does not own the sweep.</summary>
    private void AdoptLease(SweepLease claim)
    {
        claim.Adopt().PipeTo(Self, success: check => new LeaseAdopted(check), failure: e => new LeaseAdopted(new LeaseCheck(false, null, e)));
        BecomeStacked(() =>
        {
            Command<LeaseAdopted>(adopted =>
            {
                UnbecomeStacked();
                if (!adopted.Check.Held)
                {
                    Abandon(adopted.Check.Error is { } error ? JournalFaults.Describe(error) : new JournalFault($"another process owns sweep {sweepId}: {adopted.Check.Why}", "stop that process first, or wait for its claim to lapse"), stopTrials: false);
                    return;
                }
                leaseHeldAt = DateTimeOffset.UtcNow;
                Timers.StartPeriodicTimer(LeaseTimer, new RenewDue(), claim.RenewEvery);
                Stash.UnstashAll();
            });
            CommandAny(_ => Stash.Stash());
        });
    }

    private void RenewLease()
    {
        if (lease is null || renewing || abandoned) return;
        renewing = true;
        lease.Renew().PipeTo(Self, success: check => new LeaseRenewed(check), failure: e => new LeaseRenewed(new LeaseCheck(false, null, e)));
    }

    /// <summary>A renewal the journal refused (another process took the sweep over) or could not answer for longer than the lapse: this coordinator stops.</summary>
    private void HandleRenewed(LeaseCheck check)
    {
        renewing = false;
        var now = DateTimeOffset.UtcNow;
        if (check.Held)
        {
            leaseHeldAt = now;
            return;
        }
        if (check.Error is null)
        {
            Abandon(new JournalFault($"another process took sweep {sweepId} over: {check.Why ?? "its claim in the journal is no longer this process's"}", "see 'sweep status' for its owner"), stopTrials: true);
            return;
        }
        if (now - leaseHeldAt > lease!.Lapse) Abandon(JournalFaults.Describe(check.Error), stopTrials: true);
        else log.ForSweep(sweepId).Warning("Sweep {SweepId}: renewing its claim in the journal failed ({Cause}); retrying", sweepId, check.Error.Message.Split('\n')[0]);
    }

    /// <summary>
    /// The journal failed a write (or recovery, or the claim): nothing more can be recorded, so the
    /// running trials stop with a checkpoint (the journal's last checkpoint of each stays the one
    /// a resume uses), everyone listening hears why (<see cref="SweepJournalFailed"/>, also on this
    /// system's event stream for the process that started the sweep), and this coordinator stops.
    /// </summary>
    private void Abandon(JournalFault fault, bool stopTrials)
    {
        if (abandoned) return;
        abandoned = true;
        Timers.CancelAll();
        log.ForSweep(sweepId).Error("Sweep {SweepId} stops: journal failure: {Cause}", sweepId, fault.Cause);
        if (stopTrials)
        {
            foreach (var (worker, seat) in workers)
            {
                if (seat.Running is { } running) worker.Tell(new StopTrial(running.TrialId, running.Attempt, Checkpoint: true));
            }
        }
        var failed = new SweepJournalFailed(sweepId, fault.Cause, fault.Advice);
        foreach (var subscriber in subscribers.Concat(workers.Keys)) subscriber.Tell(failed);
        Context.System.EventStream.Publish(failed);
        Context.Stop(Self);
    }

    /// <summary>A write failed: Akka.Persistence stops the coordinator after this; it says why first (one line, no stack trace).</summary>
    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr) => Abandon(JournalFaults.Describe(cause), stopTrials: true);

    /// <summary>The journal refused an event (it could not store it): treated like a failed write.</summary>
    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr) => Abandon(JournalFaults.Describe(cause), stopTrials: true);

    /// <summary>The journal could not be read: nothing was changed; the process that started the sweep hears why.</summary>
    protected override void OnRecoveryFailure(Exception reason, object? message = null) => Abandon(JournalFaults.Describe(reason), stopTrials: false);

    /// <summary>Records the sweep once every part of its definition is here (<see cref="StartAssembly"/>); only the last part is answered.</summary>
    private void HandleStart(StartSweep start)
    {
        var step = StartAssembly.Add(startParts, start);
        startParts = step.Held;
        if (step is { Whole: null, Problem: null }) return;
        if (state is not null)
        {
            Sender.Tell(new SweepRefused(sweepId, $"sweep '{sweepId}' already exists in this journal; continue it with 'sweep resume {sweepId}' or choose another --sweep-id"));
            return;
        }
        if (step.Whole is not { } definition)
        {
            Sender.Tell(new SweepRefused(sweepId, step.Problem!));
            return;
        }
        var requester = Sender;
        Persist(new SweepStarted(sweepId, definition, DateTimeOffset.UtcNow), started =>
        {
            state = SweepState.Start(started);
            requester.Tell(new SweepAccepted(sweepId, state.Trials.Count, state.Trials.Count, definition.Model));
            RecordSlots();
            Dispatch();
        });
    }

    private void HandleResume()
    {
        if (state is null)
        {
            Sender.Tell(new SweepRefused(sweepId, $"no sweep '{sweepId}' in this journal"));
            return;
        }
        Sender.Tell(new SweepAccepted(sweepId, state.Trials.Count, state.Trials.Count - state.FinishedCount, state.Definition.Model));
        RecordSlots();
        CompleteIfDone();
        Dispatch();
    }

    /// <summary>
    /// The subscriber learns up to which event the journal holds the state (every event with a
    /// handler run so far; <see cref="Applied"/> sends the later ones), so it knows whom to watch and
    /// where its copy starts; never the state itself, which may be megabytes.
    /// </summary>
    private void HandleSubscribe()
    {
        subscribers.Add(Sender);
        Context.Watch(Sender);
        if (state is null) return;
        Sender.Tell(new SweepSubscribed(sweepId, LastSequenceNr));
        if (state.Phase == SweepPhase.Completed) Sender.Tell(new SweepFinished(sweepId));
        else if (halted && state.InterruptReason is { } reason) Sender.Tell(new SweepHalted(sweepId, reason));
    }

    private void HandleRegister(RegisterWorker register)
    {
        if (workers.TryGetValue(Sender, out var known) && known.Incarnation != register.Incarnation)
        {
            // The same worker actor, restarted: whatever it was running is gone with its old incarnation.
            workers.Remove(Sender);
            if (known.Running is { } lost && IsCurrent(lost.TrialId, lost.Attempt))
            {
                var now = DateTimeOffset.UtcNow;
                PersistAllAndApply([new TrialRequeued(lost.TrialId, $"worker {known.Slot.WorkerId} restarted", null, false, now, now)]);
            }
        }
        if (!workers.ContainsKey(Sender))
        {
            var health = register.Health ?? SlotHealthPolicy.Untested;
            workers[Sender] = new WorkerSeat(register.Slot, register.Incarnation, health);
            Context.Watch(Sender);
            if (SlotHealthPolicy.TakesTrials(health))
                log.ForSweep(sweepId).Info("Worker {Worker} on {Node} registered ({Device}, {Threads} thread(s)): {SelfTest}", register.Slot.WorkerId, register.Slot.Node, register.Slot.Device, register.Slot.Threads, health.Summary);
            else
                log.ForSweep(sweepId).Info("Worker {Worker} on {Node} registered unhealthy and takes no trials ({Device}, {Threads} thread(s)): {SelfTest}", register.Slot.WorkerId, register.Slot.Node, register.Slot.Device, register.Slot.Threads, health.Summary);
            RecordSlots();
        }
        if (register.Running is { } running && orphans.Remove(running.Trial.Id) && IsCurrent(running.Trial.Id, running.Attempt))
        {
            workers[Sender].Running = (running.Trial.Id, running.Attempt);
            log.Info("worker {0} still runs trial {1} attempt {2}: adopted", register.Slot.WorkerId, running.Trial.Name, running.Attempt);
        }
        Sender.Tell(new WorkerRegistered(sweepId));
        if (!HaltIfNoHealthySlot()) Dispatch();
    }

    /// <summary>Persists the verdict of every registered slot the sweep has not recorded as it is now.</summary>
    private void RecordSlots()
    {
        if (state is null) return;
        var now = DateTimeOffset.UtcNow;
        var news = workers.Values
            .Where(seat => state.IsNews(seat.Slot, seat.Health) && !(recordingSlots.TryGetValue(seat.Slot.WorkerId, out var pending) && pending == (seat.Slot, seat.Health)))
            .Select(seat => new SlotChecked(seat.Slot, seat.Health, now))
            .ToArray();
        if (news.Length == 0) return;
        foreach (var e in news) recordingSlots[e.Slot.WorkerId] = (e.Slot, e.Health);
        PersistAllAsync(news, e =>
        {
            if (recordingSlots.TryGetValue(e.Slot.WorkerId, out var pending) && pending == (e.Slot, e.Health)) recordingSlots.Remove(e.Slot.WorkerId);
            Applied(e);
        });
    }

    /// <summary>Halts the sweep when no slot that will ever register can take a trial (<see cref="SlotHealthPolicy.WhyHalt"/>).</summary>
    private bool HaltIfNoHealthySlot()
    {
        if (halted || state is null || state.AllFinished || stopRequester is not null) return halted;
        if (SlotHealthPolicy.WhyHalt(workers.Values.Select(w => (w.Slot, w.Health)).ToList(), expectedLocalSlots) is not { } reason) return false;
        halted = true;
        Persist(new SweepInterrupted(DateTimeOffset.UtcNow, reason), interrupted =>
        {
            Applied(interrupted);
            foreach (var subscriber in subscribers) subscriber.Tell(new SweepHalted(sweepId, reason));
        });
        return true;
    }

    /// <summary>
    /// Whether a worker's report about <paramref name="trialId"/> is one to consider: about a trial
    /// of this sweep, from a worker registered here. A worker that is not (it lost its coordinator)
    /// sends everything the coordinator has not acknowledged again, in order, once it has
    /// registered: a report taken before that could be taken out of order.
    /// </summary>
    private bool IsReportToConsider(string trialId) => workers.ContainsKey(Sender) && state is not null && state.Contains(trialId);

    /// <summary>
    /// Records a test point once: the same point sent again (after a hand-over) is ignored. With an
    /// early-stopping policy, the point may end its trial (<see cref="EarlyStopping.Decide"/>): the
    /// stop is written with the point, and once both are, the worker is told to stop the attempt
    /// (its end is then acknowledged and not recorded: the trial is finished).
    /// </summary>
    private void HandleProgress(TestPointReported progress)
    {
        if (!IsReportToConsider(progress.TrialId) || !WorkerReportPolicy.IsNewTestPoint(Projected(progress.TrialId), progress)) return;
        var recorded = new TrialProgress(progress.TrialId, progress.Attempt, progress.Metrics, DateTimeOffset.UtcNow);
        if ((deciding ?? state!.Stopping) is not { } stopping)
        {
            PersistAndApply(recorded);
            return;
        }
        (deciding, var stop) = stopping.Decide(recorded, Projected(progress.TrialId).Definition.Spec);
        if (stop is null)
        {
            PersistAndApply(recorded);
            return;
        }
        var worker = Sender;
        PersistAllAndApply([recorded, stop], written: () => worker.Tell(new StopTrial(stop.TrialId, stop.Attempt, Checkpoint: false)));
    }

    /// <summary>A missing or damaged checkpoint: the trial has no checkpoint from now on, so no later attempt tries that file again.</summary>
    private void HandleCheckpointMissing(TrialCheckpointMissing missing)
    {
        if (IsReportToConsider(missing.TrialId) && WorkerReportPolicy.RestartsFromScratch(Projected(missing.TrialId), missing))
            PersistAndApply(new TrialRestartedFromScratch(missing.TrialId, missing.Attempt, missing.Path, DateTimeOffset.UtcNow, missing.Reason));
    }

    /// <summary>
    /// Records the checkpoint, then tells the worker that saved it (TrialCheckpointRecorded), which
    /// only then deletes the attempt's older checkpoint files: the file the journal names is never
    /// deleted, and when persisting fails nothing is acknowledged. A checkpoint the journal already
    /// holds (sent again) is acknowledged at once (<see cref="WorkerReportPolicy.OnCheckpoint"/>).
    /// </summary>
    private void HandleCheckpoint(TrialCheckpointSaved saved)
    {
        if (!IsReportToConsider(saved.TrialId)) return;
        var worker = Sender;
        switch (WorkerReportPolicy.OnCheckpoint(state![saved.TrialId], Projected(saved.TrialId), saved))
        {
            case Receipt.Acknowledge:
                worker.Tell(new TrialCheckpointRecorded(saved.TrialId, saved.Attempt, saved.Iteration));
                return;
            case Receipt.Ignore:
                return;
        }
        var checkpointed = new TrialCheckpointed(saved.TrialId, saved.Attempt, saved.Iteration, saved.Path, DateTimeOffset.UtcNow);
        Writing([checkpointed]);
        PersistAsync(checkpointed, e =>
        {
            Applied(e);
            worker.Tell(new TrialCheckpointRecorded(e.TrialId, e.Attempt, e.Iteration));
            AfterChange();
        });
    }

    /// <summary>
    /// Records an attempt's end once (<see cref="WorkerReportPolicy.OnEnded"/>, then
    /// <see cref="TrialEndPolicy"/>) and answers <see cref="TrialEndRecorded"/> once it is written;
    /// an end the journal holds already, or of an attempt a later one replaced, is answered at once.
    /// The worker keeps the end, and sends it again, until answered.
    /// </summary>
    private void HandleEnded(TrialEnded ended)
    {
        if (!workers.TryGetValue(Sender, out var seat)) return; // it sends the end again once registered here
        if (seat.Running == (ended.TrialId, ended.Attempt)) seat.Running = null;
        // A worker that hands an attempt back is leaving, whether or not its WorkerLeaving came first.
        if (ended.Kind == TrialEndKind.HandedBack) MarkLeaving(seat);
        var worker = Sender;
        var answer = new TrialEndRecorded(ended.TrialId, ended.Attempt);
        var receipt = state is not null && state.Contains(ended.TrialId)
            ? WorkerReportPolicy.OnEnded(state[ended.TrialId], Projected(ended.TrialId), ended)
            : Receipt.Acknowledge;
        if (receipt != Receipt.Record)
        {
            if (receipt == Receipt.Acknowledge) worker.Tell(answer);
            AfterChange();
            return;
        }
        orphans.Remove(ended.TrialId);

        var record = Projected(ended.TrialId);
        lastWorkerByTrial[ended.TrialId] = record.WorkerId ?? "";
        PersistAllAndApply(TrialEndPolicy.Decide(state!.Definition, record, ended, DateTimeOffset.UtcNow), written: () => worker.Tell(answer));
        // The worker is free now: its next trial's start goes into the same journal write as this end.
        Dispatch();
    }

    /// <summary>
    /// A worker slot is leaving: it gets no more trials from now on. It stays registered (and
    /// watched) until it stops, so the attempt it still runs comes back as usual, or is re-queued
    /// if it dies first.
    /// </summary>
    private void HandleLeaving(WorkerLeaving leaving)
    {
        if (workers.TryGetValue(Sender, out var seat) && seat.Incarnation == leaving.Incarnation) MarkLeaving(seat);
    }

    private void MarkLeaving(WorkerSeat seat)
    {
        if (seat.Leaving) return;
        seat.Leaving = true;
        log.ForSweep(sweepId).Info("Worker {Worker} on {Node} is leaving: it gets no more trials", seat.Slot.WorkerId, seat.Slot.Node);
    }

    private void HandleTerminated(Terminated terminated)
    {
        subscribers.Remove(terminated.ActorRef);
        if (!workers.Remove(terminated.ActorRef, out var seat)) return;
        if (seat.Running is { } running && IsCurrent(running.TrialId, running.Attempt))
        {
            log.Warning("worker {0} on {1} is gone while running trial {2}", seat.Slot.WorkerId, seat.Slot.Node, state![running.TrialId].Definition.Name);
            var now = DateTimeOffset.UtcNow;
            PersistAllAndApply([new TrialRequeued(running.TrialId, $"worker {seat.Slot.WorkerId} on {seat.Slot.Node} was lost", null, false, now, now)]);
        }
        else
        {
            log.Info("worker {0} on {1} is gone", seat.Slot.WorkerId, seat.Slot.Node);
            AfterChange();
        }
    }

    private void HandleStop()
    {
        stopRequester = Sender;
        if (state is null || state.Phase == SweepPhase.Completed)
        {
            FinishStop();
            return;
        }
        foreach (var (worker, seat) in workers)
        {
            if (seat.Running is { } running) worker.Tell(new StopTrial(running.TrialId, running.Attempt, Checkpoint: true));
        }
        AfterChange();
    }

    private void RequeueOrphans()
    {
        if (state is null || orphans.Count == 0) return;
        var now = DateTimeOffset.UtcNow;
        var events = orphans
            .Where(id => Projected(id).State == TrialState.Running)
            .Select(id => (ISweepEvent)new TrialRequeued(id, "its worker did not come back after the coordinator restarted", null, false, now, now))
            .ToArray();
        orphans.Clear();
        PersistAllAndApply(events);
    }

    /// <summary>Hands ready trials to idle workers, preferring a worker other than the one a trial last ran on.</summary>
    private void Dispatch()
    {
        if (state is null || stopRequester is not null || halted || state.Phase == SweepPhase.Completed) return;
        var idle = workers.Where(w => w.Value.Running is null && w.Value.TakesTrials).Select(w => (w.Key, w.Value.Slot)).ToList();
        if (idle.Count == 0) return;

        var now = DateTimeOffset.UtcNow;
        var assignments = DispatchPolicy.Assign(state, now, idle, id => orphans.Contains(id) || unapplied.ContainsKey(id), lastWorkerByTrial);
        foreach (var (worker, started) in assignments) workers[worker].Running = (started.TrialId, started.Attempt);

        if (state.NextReadyAt(now) is { } next) Timers.StartSingleTimer(DispatchTimer, new DispatchDue(), next - now);
        if (assignments.Count == 0) return;

        var workerByTrial = assignments.ToDictionary(a => a.Started.TrialId, a => a.Slot);
        var starts = assignments.Select(a => a.Started).ToList();
        Writing(starts);
        PersistAllAsync(starts, started =>
        {
            Applied(started);
            var record = state[started.TrialId];
            workerByTrial[started.TrialId].Tell(new RunTrial(
                sweepId,
                record.Definition,
                started.Attempt,
                state.Definition.Model,
                state.Definition.Synthetic,
                state.Definition.Divergence,
                CheckpointPath(started.TrialId),
                record.CheckpointPath,
                state.Definition.Command,
                state.Definition.Plugin));
        });
    }

    private string CheckpointPath(string trialId) => Path.Combine(settings.CheckpointDirectory, sweepId, trialId + ".ckpt");

    /// <summary>Whether <paramref name="attempt"/> is the one the trial runs, counting the events being written: reports of any other are stale.</summary>
    private bool IsCurrent(string trialId, int attempt) =>
        state is not null && state.Contains(trialId) && WorkerReportPolicy.Runs(Projected(trialId), attempt);

    /// <summary>The trial as it will be once the events being written about it are applied.</summary>
    private TrialRecord Projected(string trialId) =>
        unapplied.TryGetValue(trialId, out var pending) ? pending.Aggregate(state![trialId], SweepState.Next) : state![trialId];

    /// <summary>Notes trial events handed to the journal: until each is applied (<see cref="Applied"/>), <see cref="Projected"/> counts it.</summary>
    private void Writing(IEnumerable<ISweepEvent> events)
    {
        foreach (var e in events.OfType<ITrialEvent>())
        {
            if (!unapplied.TryGetValue(e.TrialId, out var pending)) unapplied[e.TrialId] = pending = [];
            pending.Add(e);
        }
    }

    private void PersistAndApply(ISweepEvent @event) => PersistAllAndApply([@event]);

    /// <summary>
    /// Persists events and applies each once it is written; then <paramref name="written"/>, if
    /// any, once all of them are. Until then, decisions see the trials as they will be
    /// (<see cref="Projected"/>), so a repeated or crossing report cannot end a trial twice.
    /// </summary>
    private void PersistAllAndApply(IReadOnlyCollection<ISweepEvent> events, Action? written = null)
    {
        if (events.Count == 0)
        {
            written?.Invoke();
            AfterChange();
            return;
        }
        Writing(events);
        int remaining = events.Count;
        PersistAllAsync(events, e =>
        {
            Applied(e);
            if (--remaining > 0) return;
            written?.Invoke();
            AfterChange();
        });
    }

    private void Applied(ISweepEvent e)
    {
        state!.Apply(e);
        if (e is ITrialEvent trialEvent && unapplied.TryGetValue(trialEvent.TrialId, out var pending) && pending.Remove(trialEvent) && pending.Count == 0)
            unapplied.Remove(trialEvent.TrialId);
        LogEvent(e);
        foreach (var subscriber in subscribers) subscriber.Tell(e);
        // A snapshot holds every trial: for large sweeps, one per sweep-size worth of events.
        if (++eventsSinceSnapshot >= Math.Max(settings.SnapshotEvery, state.Trials.Count))
        {
            eventsSinceSnapshot = 0;
            SaveSnapshot(state.ToSnapshot());
        }
    }

    /// <summary>
    /// One log line per persisted event, in the words the progress view shows (<see cref="EventText"/>),
    /// with the trial's properties for a trial's event (test points and checkpoints at debug level).
    /// </summary>
    private void LogEvent(ISweepEvent e)
    {
        if (EventText.Of(state!, e) is not { } line) return;
        var log = e is ITrialEvent t && state!.Contains(t.TrialId) && state[t.TrialId] is var trial
            ? this.log.ForTrial(sweepId, t.TrialId, trial.Definition.Name, trial.Attempts, trial.Node, trial.WorkerId)
            : this.log.ForSweep(sweepId);
        var values = line.Values.Select(v => v ?? "").ToArray();
        switch (line.Level)
        {
            case EventLevel.Debug: log.Debug(line.Template, values); break;
            case EventLevel.Warning: log.Warning(line.Template, values); break;
            default: log.Info(line.Template, values); break;
        }
    }

    private void AfterChange()
    {
        if (stopRequester is not null)
        {
            if (workers.Values.All(w => w.Running is null)) FinishStop();
            return;
        }
        if (CompleteIfDone()) return;
        Dispatch();
    }

    /// <remarks>
    /// This and <see cref="FinishStop"/> write with PersistAsync (their flags keep them from writing
    /// twice): both run from other events' PersistAsync handlers (<see cref="AfterChange"/>), and a
    /// Persist nested in a PersistAsync handler leaves the actor stashing every command after the
    /// next one for good (akka/akka-core#23781, the same in Akka.NET 1.5), so the coordinator would
    /// no longer answer a worker sending an end again.
    /// </remarks>
    private bool CompleteIfDone()
    {
        if (state is null || !state.AllFinished) return false;
        if (state.Phase == SweepPhase.Completed || completing) return true;
        // A trial stopped early is finished before its worker has stopped it: the sweep ends once every attempt has.
        if (workers.Values.Any(w => w.Running is not null)) return true;
        completing = true;
        PersistAsync(new SweepCompleted(DateTimeOffset.UtcNow), completed =>
        {
            Applied(completed);
            foreach (var subscriber in subscribers) subscriber.Tell(new SweepFinished(sweepId));
        });
        return true;
    }

    private void FinishStop()
    {
        if (stopped) return;
        stopped = true;
        var requester = stopRequester!;
        if (state is null || state.Phase != SweepPhase.Running)
        {
            if (state is not null) requester.Tell(new SweepStopped(sweepId));
            return;
        }
        PersistAsync(new SweepInterrupted(DateTimeOffset.UtcNow), interrupted =>
        {
            Applied(interrupted);
            requester.Tell(new SweepStopped(sweepId));
        });
    }
}
