using Akka.Actor;
using Akka.Event;
using Sweep.GpuWorker.Logging;
using Sweep.GpuWorker.Runners;
using Sweep.GpuWorker.Training;
using Sweep.Protocol;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Workers;

/// <summary>
/// One worker slot (a CUDA device, or a share of the CPU cores), as the coordinator sees it: the
/// slot's agent. Its trials train elsewhere, in the slot's <see cref="ISlotHost"/>: a worker process
/// of its own (<see cref="InWorkerProcess"/>, what `sweep` runs) or, in the actor's tests, a thread
/// (<see cref="Props"/>). The host gives the slot's self-test verdict first; the worker then
/// registers with the coordinator, with the verdict, until it is acknowledged, hands it one attempt
/// at a time, keeps and forwards each test point and checkpoint, and reports how the attempt ended
/// (an attempt whose worker process died ends as Failed, with the cause). A repeated RunTrial for
/// the attempt it already runs is ignored, so redelivery is harmless.
/// </summary>
/// <remarks>
/// <para>
/// Reports survive a coordinator that dies (its node killed, then a hand-over to its successor):
/// every report stays in the slot's <see cref="ReportOutbox"/> until the coordinator acknowledges
/// it (a checkpoint with <see cref="TrialCheckpointRecorded"/>, an end with
/// <see cref="TrialEndRecorded"/>). While the worker has no coordinator (it saw the one it
/// registered with die), reports wait there; once a coordinator accepts its registration, the
/// worker first sends it everything not acknowledged, in order, then carries on. An ended attempt's
/// reports also go again every <see cref="RetryEvery"/> until its end is acknowledged. So an attempt
/// that ends during a hand-over is recorded by the new coordinator, not trained again, and a running
/// one's test points are all in the journal, each once (the coordinator ignores what it has).
/// </para>
/// <para>
/// Checkpoints: an attempt writes one file per checkpoint iteration
/// (<see cref="CheckpointFiles.Versioned"/> of <see cref="RunTrial.CheckpointPath"/>) and resumes
/// from exactly <see cref="RunTrial.ResumeFrom"/>, the file the journal names. At its start the
/// worker deletes the trial's other versioned files (superseded, or written after the journal's last
/// record); when the coordinator answers <see cref="TrialCheckpointRecorded"/> it deletes the
/// attempt's files of earlier iterations. A checkpoint that cannot be read
/// (<see cref="CheckpointUnreadableException"/>) is treated like a missing one: the coordinator is
/// told why, and the same attempt starts again from scratch at once.
/// </para>
/// </remarks>
public sealed class TrialWorker : ReceiveActor, IWithTimers
{
    private const string RegisterTimer = "register";
    private const string ResendTimer = "resend";

    /// <summary>How often a worker registers again while unanswered, and sends an ended attempt's reports again while its end is unacknowledged.</summary>
    public static readonly TimeSpan RetryEvery = TimeSpan.FromSeconds(2);

    private readonly WorkerSlot slot;
    private readonly IActorRef coordinator;
    private readonly Func<ISlotHost> hostFactory;
    private readonly TimeSpan selfTestTimeout;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private ISlotHost? host;
    private SlotHealth? health;
    private string? coordinatorStopped;
    private readonly string incarnation = Guid.NewGuid().ToString("N");
    private Attempt? current;

    /// <summary>The attempt that ran before <see cref="current"/>: its last checkpoint's acknowledgement often comes after it ended.</summary>
    private Attempt? previous;
    private IActorRef? registeredWith;
    private IActorRef? leaveRequester;
    private readonly ReportOutbox outbox = new();

    /// <summary>The attempt being run, the checkpoint files it owns, and why it was stopped.</summary>
    private sealed class Attempt(RunTrial trial)
    {
        public RunTrial Trial { get; } = trial;
        public string? StopReason { get; set; }

        /// <summary>The versioned checkpoint files this attempt owns (the one it resumed from, those it wrote) by iteration, with their time of writing.</summary>
        private readonly SortedDictionary<int, (string Path, DateTime WrittenAt)> files = [];

        public bool Is(string trialId, int attempt) => Trial.Trial.Id == trialId && Trial.Attempt == attempt;

        public void Own(int iteration, string path)
        {
            var writtenAt = File.GetLastWriteTimeUtc(path);
            files[iteration] = (path, writtenAt);
        }

        /// <summary>Forgets every file (they were deleted: the attempt starts over).</summary>
        public void DisownAll() => files.Clear();

        /// <summary>
        /// Forgets the files of iterations before <paramref name="iteration"/> and returns those to
        /// delete: not a file written again since (by a later attempt of the trial, which owns it now).
        /// </summary>
        public IReadOnlyList<string> ReleaseBefore(int iteration)
        {
            var older = files.Where(f => f.Key < iteration).Select(f => f.Value).ToList();
            foreach (var key in files.Keys.Where(key => key < iteration).ToList()) files.Remove(key);
            return older.Where(f => File.GetLastWriteTimeUtc(f.Path) == f.WrittenAt).Select(f => f.Path).ToList();
        }
    }

    /// <summary>What the slot's host said: its verdict, an attempt's report, or an attempt's end.</summary>
    private sealed record FromHost(ISweepMessage Message);

    private sealed record RegisterDue;

    private sealed record ResendDue;

    private sealed record SelfTestTimedOut;

    /// <summary>Hand the running attempt back (checkpointed) and take no more: the node is leaving. Answered by <see cref="Left"/>.</summary>
    public sealed record Leave;

    /// <summary>The worker has handed back its attempt, if it had one.</summary>
    public sealed record Left(string WorkerId);

    public TrialWorker(WorkerSlot slot, IActorRef coordinator, Func<ISlotHost> host, TimeSpan selfTestTimeout)
    {
        this.selfTestTimeout = selfTestTimeout;
        this.slot = slot;
        this.coordinator = coordinator;
        hostFactory = host;

        Receive<FromHost>(HandleFromHost);
        Receive<SelfTestTimedOut>(_ => HandleSelfTested(new SlotHealth(false, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"self-test did not finish within {selfTestTimeout.TotalSeconds:0.#} s on {slot.Device}"))));
        Receive<RegisterDue>(_ => Register());
        Receive<WorkerRegistered>(_ => HandleRegistered());
        Receive<Terminated>(HandleCoordinatorGone);
        Receive<RunTrial>(HandleRun);
        Receive<StopTrial>(HandleStop);
        Receive<TrialCheckpointRecorded>(HandleRecorded);
        Receive<TrialEndRecorded>(HandleEndRecorded);
        Receive<ResendDue>(_ => ResendEnded());
        Receive<Leave>(_ => HandleLeave());
        Receive<SweepJournalFailed>(failed => coordinatorStopped = $"journal failure: {failed.Cause}");
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The runners of this process: LeNet (the built-in plug-in <see cref="LeNetModel"/>) and plug-ins with TorchSharp, the synthetic model, and command trials (their log on standard error).</summary>
    public static Func<ModelKind, ITrialRunner> DefaultRunners { get; } = model => model switch
    {
        // LeNet is a plug-in like any other, built in.
        ModelKind.Lenet => new PluginRunner(_ => new LeNetModel()),
        ModelKind.Synthetic => new Synthetic.SyntheticRunner(),
        ModelKind.Command => new CommandRunner(),
        ModelKind.Plugin => new PluginRunner(),
        _ => throw new ArgumentOutOfRangeException(nameof(model), model, null),
    };

    /// <summary>
    /// A slot whose trials train in a worker process of its own (<see cref="WorkerProcessSlot"/>):
    /// how every `sweep` node runs its slots.
    /// </summary>
    /// <param name="slot">The slot this worker is.</param>
    /// <param name="coordinator">The coordinator, or the cluster singleton's proxy.</param>
    /// <param name="selfTest">Whether the worker process runs its device's known-answer self-test before it takes trials (slots that may train LeNet); otherwise <see cref="SlotHealth.NotNeeded"/>.</param>
    /// <param name="selfTestTimeout">How long the process may take to start and give its verdict (default <see cref="DefaultSelfTestTimeout"/>).</param>
    /// <param name="startedAhead">The slot's worker process when it was started before this actor (<see cref="WorkerProcessSlot.StartAhead"/>); null starts one.</param>
    public static Props InWorkerProcess(WorkerSlot slot, IActorRef coordinator, bool selfTest, TimeSpan? selfTestTimeout = null, WorkerProcessSlot? startedAhead = null) =>
        Akka.Actor.Props.Create(() => new TrialWorker(slot, coordinator, () => startedAhead ?? new WorkerProcessSlot(slot, selfTest), selfTestTimeout ?? DefaultSelfTestTimeout));

    /// <summary>
    /// A slot whose trials run on a thread of this process (<see cref="InThreadSlot"/>): for tests
    /// of the actor with scripted runners.
    /// </summary>
    /// <param name="slot">The slot this worker is.</param>
    /// <param name="coordinator">The coordinator, or the cluster singleton's proxy.</param>
    /// <param name="runners">What runs each model (default: <see cref="DefaultRunners"/>).</param>
    /// <param name="selfTest">
    /// The slot's self-test, run once before registering (on a thread of its own). Null for a slot
    /// that only runs synthetic trials: it registers at once as <see cref="SlotHealth.NotNeeded"/>.
    /// A self-test that throws, or has not answered within <paramref name="selfTestTimeout"/>
    /// (default <see cref="DefaultSelfTestTimeout"/>), is an unhealthy verdict: a slot never stays
    /// unregistered, so a sweep waiting for its slots never waits for nothing.
    /// </param>
    /// <param name="selfTestTimeout">How long the self-test may take.</param>
    public static Props Props(WorkerSlot slot, IActorRef coordinator, Func<ModelKind, ITrialRunner>? runners = null, Func<SlotHealth>? selfTest = null, TimeSpan? selfTestTimeout = null) =>
        Akka.Actor.Props.Create(() => new TrialWorker(slot, coordinator, () => new InThreadSlot(slot, runners ?? DefaultRunners, selfTest), selfTestTimeout ?? DefaultSelfTestTimeout));

    /// <summary>Far beyond the self-test's second or so (and a worker process's start), even with a cold GPU driver.</summary>
    public static readonly TimeSpan DefaultSelfTestTimeout = TimeSpan.FromMinutes(2);

    private const string SelfTestTimer = "self-test";

    /// <summary>The known-answer self-test of <paramref name="slot"/>'s device, with the fault the environment injects for it, if any.</summary>
    public static Func<SlotHealth> DeviceSelfTest(WorkerSlot slot) =>
        () => SelfTest.KnownAnswerTest.Run(slot.Device, slot.Threads, SelfTest.SelfTestFault.FromEnvironment(slot.WorkerId)).ToHealth();

    protected override void PreStart()
    {
        var self = Self;
        host = hostFactory();
        host.Start(message => self.Tell(new FromHost(message)), log);
        Timers.StartSingleTimer(SelfTestTimer, new SelfTestTimedOut(), selfTestTimeout);
    }

    protected override void PostStop() => host?.Dispose();

    private void HandleFromHost(FromHost from)
    {
        switch (from.Message)
        {
            case WorkerProcessReady ready when health is null:
                HandleSelfTested(ready.Health);
                break;
            case WorkerProcessReady ready:
                if (ready.Health != health) log.Warning("worker {0}: its restarted worker process {1}: {2}", slot.WorkerId, ready.Health.Healthy ? "passed its self-test" : "takes no trials", ready.Health.Summary);
                health = ready.Health;
                break;
            case TrialCheckpointSaved saved:
                // Owned before the coordinator hears of it, so its acknowledgement always finds the file.
                if (current is { } owner && owner.Is(saved.TrialId, saved.Attempt)) owner.Own(saved.Iteration, saved.Path);
                Send(saved);
                break;
            case TrialCheckpointMissing { Reason: { } reason } damaged:
                if (current is { } restarting && restarting.Is(damaged.TrialId, damaged.Attempt))
                {
                    restarting.DisownAll();
                    TrialLogFor(restarting.Trial).Warning("Checkpoint {Checkpoint} of trial {TrialName} cannot be used ({Reason}): attempt {Attempt} starts from scratch", damaged.Path, restarting.Trial.Trial.Name, reason, damaged.Attempt);
                }
                Send(damaged);
                break;
            case TrialEnded ended:
                HandleFinished(ended);
                break;
            case var report:
                Send(report);
                break;
        }
    }

    /// <summary>The verdict is in: registration starts (an unhealthy slot registers too, so the sweep knows it and why).</summary>
    private void HandleSelfTested(SlotHealth verdict)
    {
        if (health is not null) return; // the first verdict stands (a self-test answering after its timeout)
        Timers.Cancel(SelfTestTimer);
        health = verdict;
        if (health.Healthy) log.Info("worker {0}: {1}", slot.WorkerId, health.Summary);
        else log.Warning("worker {0} takes no trials: {1}", slot.WorkerId, health.Summary);
        Register();
        Timers.StartPeriodicTimer(RegisterTimer, new RegisterDue(), RetryEvery);
    }

    private void Register()
    {
        if (health is not null && leaveRequester is null) coordinator.Tell(new RegisterWorker(slot, current?.Trial, incarnation, health));
    }

    /// <summary>
    /// Watches the coordinator that answered: if it dies (its node went down), the worker registers
    /// with its successor. A coordinator new to this worker first gets every report not acknowledged,
    /// in order: the previous one may have died before it had them.
    /// </summary>
    private void HandleRegistered()
    {
        Timers.Cancel(RegisterTimer);
        coordinatorStopped = null;
        if (Sender.Equals(registeredWith) || Sender.Equals(Self)) return;
        if (registeredWith is not null) Context.Unwatch(registeredWith);
        registeredWith = Sender;
        Context.Watch(registeredWith);
        if (outbox.Pending.Count == 0) return;
        log.Info("worker {0}: sending the coordinator {1} report(s) not acknowledged yet", slot.WorkerId, outbox.Pending.Count);
        foreach (var report in outbox.Pending) coordinator.Tell(report);
    }

    /// <summary>
    /// Keeps a report until it is acknowledged and sends it, unless the worker has no coordinator
    /// (it registers again, and sends everything then). An end is sent again every
    /// <see cref="RetryEvery"/> until acknowledged.
    /// </summary>
    private void Send(ISweepMessage report)
    {
        outbox.Add(report);
        if (registeredWith is not null) coordinator.Tell(report);
        if (report is TrialEnded && !Timers.IsTimerActive(ResendTimer)) Timers.StartPeriodicTimer(ResendTimer, new ResendDue(), RetryEvery);
    }

    /// <summary>The ended attempts' reports again, to the coordinator this worker is registered with, while an end is unacknowledged.</summary>
    private void ResendEnded()
    {
        if (!outbox.AwaitsEnd)
        {
            Timers.Cancel(ResendTimer);
            return;
        }
        if (registeredWith is null) return;
        foreach (var report in outbox.OfEndedAttempts) coordinator.Tell(report);
    }

    private void HandleEndRecorded(TrialEndRecorded recorded)
    {
        outbox.Acknowledge(recorded);
        if (!outbox.AwaitsEnd) Timers.Cancel(ResendTimer);
    }

    private void HandleCoordinatorGone(Terminated terminated)
    {
        if (!terminated.ActorRef.Equals(registeredWith)) return;
        registeredWith = null;
        if (leaveRequester is not null) return; // leaving: no successor to register with
        // This process is shutting down, or the coordinator said why it stopped (its journal failed): no news for the console.
        if (CoordinatedShutdown.Get(Context.System).ShutdownReason is not null || coordinatorStopped is not null)
            log.Info("worker {0}: the coordinator stopped{1}; registering with its successor, if one comes", slot.WorkerId, coordinatorStopped is null ? "" : $" ({coordinatorStopped})");
        else
            log.Warning("worker {0}: the coordinator is gone; registering with its successor{1}", slot.WorkerId, current is null ? "" : $" (still running {current.Trial.Trial.Name})");
        Register();
        Timers.StartPeriodicTimer(RegisterTimer, new RegisterDue(), RetryEvery);
    }

    /// <summary>
    /// Unregisters first (<see cref="WorkerLeaving"/>: the coordinator gives this slot no more
    /// trials), then hands the running attempt back with a checkpoint; a trial handed to it after
    /// that goes back untouched (<see cref="TrialEndKind.HandedBack"/>, which does not count as an attempt).
    /// </summary>
    private void HandleLeave()
    {
        if (leaveRequester is null && health is not null) coordinator.Tell(new WorkerLeaving(slot, incarnation));
        leaveRequester = Sender;
        Timers.Cancel(RegisterTimer);
        if (current is null)
        {
            leaveRequester.Tell(new Left(slot.WorkerId));
            return;
        }
        current.StopReason = $"worker {slot.WorkerId} left";
        host!.Stop(current.Trial.Trial.Id, current.Trial.Attempt);
    }

    private void HandleRun(RunTrial trial)
    {
        if (health is not { Healthy: true })
        {
            Sender.Tell(new TrialEnded(trial.Trial.Id, trial.Attempt, TrialEndKind.Failed, 0, $"worker {slot.WorkerId} takes no trials: {health?.Summary ?? "its self-test has not finished"}", null));
            return;
        }
        if (leaveRequester is not null)
        {
            Sender.Tell(new TrialEnded(trial.Trial.Id, trial.Attempt, TrialEndKind.HandedBack, 0, $"worker {slot.WorkerId} is leaving", null));
            return;
        }
        if (current is not null)
        {
            if (current.Trial.Trial.Id == trial.Trial.Id && current.Trial.Attempt == trial.Attempt) return;
            log.Warning("worker {0} is busy with {1}; refusing {2}", slot.WorkerId, current.Trial.Trial.Name, trial.Trial.Name);
            Sender.Tell(new TrialEnded(trial.Trial.Id, trial.Attempt, TrialEndKind.Failed, 0, $"worker {slot.WorkerId} was busy", null));
            return;
        }

        var attempt = current = new Attempt(trial);
        var resumeFrom = ResumeFromIfPresent(trial);
        CleanUpAtStart(trial, resumeFrom);
        if (resumeFrom is not null && CheckpointFiles.IterationOf(trial.CheckpointPath, resumeFrom) is { } resumeIteration) attempt.Own(resumeIteration, resumeFrom);
        TrialLogFor(trial).Info("Worker {Worker} runs trial {TrialName} attempt {Attempt}", slot.WorkerId, trial.Trial.Name, trial.Attempt);
        host!.Run(trial with { ResumeFrom = resumeFrom });
    }

    /// <summary>
    /// Before an attempt writes anything: with a checkpoint to resume from, the trial's other
    /// versioned files go (older ones are superseded; newer ones were written after the journal's last
    /// record, by an attempt whose end the journal never saw), in its folder and in the folder this
    /// attempt writes to; from scratch, all of them. The unversioned file of older sweeps is left alone.
    /// </summary>
    private void CleanUpAtStart(RunTrial trial, string? resumeFrom)
    {
        var stale = AttemptRun.TrialFilesIn(trial, resumeFrom is null ? [trial.CheckpointPath] : [trial.CheckpointPath, resumeFrom])
            .Where(path => resumeFrom is null || !CheckpointFiles.SameFile(path, resumeFrom));
        LogDeleteFailures(trial, CheckpointFiles.Delete(stale));
    }

    /// <summary>The journal holds the checkpoint at the acknowledged iteration: the attempt's earlier files are superseded, and its reports up to it are delivered.</summary>
    private void HandleRecorded(TrialCheckpointRecorded recorded)
    {
        outbox.Acknowledge(recorded);
        var attempt = current is { } running && running.Is(recorded.TrialId, recorded.Attempt) ? running
            : previous is { } ended && ended.Is(recorded.TrialId, recorded.Attempt) ? ended
            : null;
        if (attempt is null) return;
        var superseded = attempt.ReleaseBefore(recorded.Iteration);
        // A command trial's checkpoint is its program's folder, the same at every iteration: the program keeps it.
        if (attempt.Trial.Model != ModelKind.Command) LogDeleteFailures(attempt.Trial, CheckpointFiles.Delete(superseded));
    }

    private void LogDeleteFailures(RunTrial trial, IReadOnlyList<string> failures)
    {
        foreach (var failure in failures) TrialLogFor(trial).Warning("Could not delete a superseded checkpoint of trial {TrialName}: {Failure}", trial.Trial.Name, failure);
    }

    private ILoggingAdapter TrialLogFor(RunTrial trial) => log.ForTrial(trial.SweepId, trial.Trial.Id, trial.Trial.Name, trial.Attempt, slot.Node, slot.WorkerId);

    /// <summary>A checkpoint that is not on this node (another machine wrote it) means starting over.</summary>
    private string? ResumeFromIfPresent(RunTrial trial)
    {
        if (trial.ResumeFrom is not { } path) return null;
        // A command trial's checkpoint is its program's folder.
        if (File.Exists(path) || (trial.Model == ModelKind.Command && Directory.Exists(path))) return path;
        TrialLogFor(trial).Warning("Checkpoint {Checkpoint} of trial {TrialName} is not on this node: it starts from scratch", path, trial.Trial.Name);
        Send(new TrialCheckpointMissing(trial.Trial.Id, trial.Attempt, path));
        return null;
    }

    private void HandleStop(StopTrial stop)
    {
        if (current is null || !current.Is(stop.TrialId, stop.Attempt)) return;
        host!.Stop(stop.TrialId, stop.Attempt);
    }

    /// <summary>
    /// The running attempt ended (in its process, or with its process): the end is kept and sent
    /// until acknowledged, with the reason it was stopped for, and a node that is leaving hears the slot is free.
    /// </summary>
    private void HandleFinished(TrialEnded ended)
    {
        if (current is not { } attempt || !attempt.Is(ended.TrialId, ended.Attempt))
        {
            Send(ended);
            return;
        }
        current = null;
        previous = attempt;
        if (ended is { Kind: TrialEndKind.Stopped, Reason: null }) ended = ended with { Reason = attempt.StopReason };
        var trial = attempt.Trial;
        if (ended.Reason is null) TrialLogFor(trial).Info("Trial {TrialName} attempt {Attempt} ended on {Worker}: {Outcome} at iteration {Iteration}", trial.Trial.Name, trial.Attempt, slot.WorkerId, ended.Kind, ended.Iteration);
        else TrialLogFor(trial).Info("Trial {TrialName} attempt {Attempt} ended on {Worker}: {Outcome} at iteration {Iteration}: {Reason}", trial.Trial.Name, trial.Attempt, slot.WorkerId, ended.Kind, ended.Iteration, ended.Reason);
        Send(ended);
        leaveRequester?.Tell(new Left(slot.WorkerId));
    }
}
