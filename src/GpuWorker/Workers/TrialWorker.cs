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
/// One worker slot (a CUDA device, or a share of the CPU cores). First runs its device's
/// known-answer self-test on a thread of its own (when it may train real models), then registers
/// with the coordinator, with the verdict, until it is acknowledged, runs one attempt at a time on a thread of its own (training never runs
/// on an actor thread), forwards each test point and checkpoint, applies the sweep's divergence
/// policy at every test point, and reports how the attempt ended. A repeated RunTrial for the
/// attempt it already runs is ignored, so redelivery is harmless.
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
    private readonly Func<ModelKind, ITrialRunner> runners;
    private readonly Func<SlotHealth>? selfTest;
    private readonly TimeSpan selfTestTimeout;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private SlotHealth? health;
    private string? coordinatorStopped;
    private readonly string incarnation = Guid.NewGuid().ToString("N");
    private Attempt? current;

    /// <summary>The attempt that ran before <see cref="current"/>: its last checkpoint's acknowledgement often comes after it ended.</summary>
    private Attempt? previous;
    private IActorRef? registeredWith;
    private IActorRef? leaveRequester;
    private readonly ReportOutbox outbox = new();

    /// <summary>The attempt being run, and how to stop it.</summary>
    private sealed class Attempt(RunTrial trial)
    {
        public RunTrial Trial { get; } = trial;
        public CancellationTokenSource Cancellation { get; } = new();
        public volatile string? DivergenceReason;
        public volatile string? FaultReason;
        public volatile int LastIteration;
        public string? StopReason { get; set; }

        /// <summary>
        /// The versioned checkpoint files this attempt owns (the one it resumed from, those it wrote)
        /// by iteration, with their time of writing; locked, as the training thread adds to it.
        /// </summary>
        private readonly SortedDictionary<int, (string Path, DateTime WrittenAt)> files = [];

        public bool Is(string trialId, int attempt) => Trial.Trial.Id == trialId && Trial.Attempt == attempt;

        public void Own(int iteration, string path)
        {
            var writtenAt = File.GetLastWriteTimeUtc(path);
            lock (files) files[iteration] = (path, writtenAt);
        }

        /// <summary>Forgets every file (they were deleted: the attempt starts over).</summary>
        public void DisownAll()
        {
            lock (files) files.Clear();
        }

        /// <summary>
        /// Forgets the files of iterations before <paramref name="iteration"/> and returns those to
        /// delete: not a file written again since (by a later attempt of the trial, which owns it now).
        /// </summary>
        public IReadOnlyList<string> ReleaseBefore(int iteration)
        {
            List<(string Path, DateTime WrittenAt)> older;
            lock (files)
            {
                older = files.Where(f => f.Key < iteration).Select(f => f.Value).ToList();
                foreach (var key in files.Keys.Where(key => key < iteration).ToList()) files.Remove(key);
            }
            return older.Where(f => File.GetLastWriteTimeUtc(f.Path) == f.WrittenAt).Select(f => f.Path).ToList();
        }
    }

    private sealed record AttemptFinished(RunTrial Trial, TrainingResult? Result, Exception? Error);

    private sealed record RegisterDue;

    private sealed record ResendDue;

    /// <summary>A report from the training thread, to keep and send (<see cref="Send"/>).</summary>
    private sealed record Report(ISweepMessage Message);

    private sealed record SelfTestDone(SlotHealth Health);

    /// <summary>The training thread found the attempt's checkpoint unreadable and started it again from scratch.</summary>
    private sealed record StartedOver(RunTrial Trial, CheckpointUnreadableException Damage, IReadOnlyList<string> DeleteFailures);

    /// <summary>Hand the running attempt back (checkpointed) and take no more: the node is leaving. Answered by <see cref="Left"/>.</summary>
    public sealed record Leave;

    /// <summary>The worker has handed back its attempt, if it had one.</summary>
    public sealed record Left(string WorkerId);

    public TrialWorker(WorkerSlot slot, IActorRef coordinator, Func<ModelKind, ITrialRunner> runners, Func<SlotHealth>? selfTest, TimeSpan selfTestTimeout)
    {
        this.selfTestTimeout = selfTestTimeout;
        this.slot = slot;
        this.coordinator = coordinator;
        this.runners = runners;
        this.selfTest = selfTest;

        Receive<SelfTestDone>(HandleSelfTested);
        Receive<RegisterDue>(_ => Register());
        Receive<WorkerRegistered>(_ => HandleRegistered());
        Receive<Terminated>(HandleCoordinatorGone);
        Receive<RunTrial>(HandleRun);
        Receive<StopTrial>(HandleStop);
        Receive<AttemptFinished>(HandleFinished);
        Receive<TrialCheckpointRecorded>(HandleRecorded);
        Receive<TrialEndRecorded>(HandleEndRecorded);
        Receive<Report>(report => Send(report.Message));
        Receive<ResendDue>(_ => ResendEnded());
        Receive<StartedOver>(HandleStartedOver);
        Receive<Leave>(_ => HandleLeave());
        Receive<SweepJournalFailed>(failed => coordinatorStopped = $"journal failure: {failed.Cause}");
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The runners of this process: LeNet with TorchSharp, and the synthetic model.</summary>
    public static Func<ModelKind, ITrialRunner> DefaultRunners { get; } = model => model switch
    {
        ModelKind.Lenet => new LeNetRunner(),
        ModelKind.Synthetic => new Synthetic.SyntheticRunner(),
        _ => throw new ArgumentOutOfRangeException(nameof(model), model, null),
    };

    /// <param name="slot">The slot this worker is.</param>
    /// <param name="coordinator">The coordinator, or the cluster singleton's proxy.</param>
    /// <param name="runners">What runs each model (default: <see cref="DefaultRunners"/>).</param>
    /// <param name="selfTest">
    /// The slot's self-test, run once before registering (on a thread of its own): typically
    /// <see cref="SelfTest.KnownAnswerTest"/> on the slot's device and thread count. Null for a slot
    /// that only runs synthetic trials: it registers at once as <see cref="SlotHealth.NotNeeded"/>.
    /// A self-test that throws, or has not answered within <paramref name="selfTestTimeout"/>
    /// (default <see cref="DefaultSelfTestTimeout"/>), is an unhealthy verdict: a slot never stays
    /// unregistered, so a sweep waiting for its slots never waits for nothing.
    /// </param>
    /// <param name="selfTestTimeout">How long the self-test may take.</param>
    public static Props Props(WorkerSlot slot, IActorRef coordinator, Func<ModelKind, ITrialRunner>? runners = null, Func<SlotHealth>? selfTest = null, TimeSpan? selfTestTimeout = null) =>
        Akka.Actor.Props.Create(() => new TrialWorker(slot, coordinator, runners ?? DefaultRunners, selfTest, selfTestTimeout ?? DefaultSelfTestTimeout));

    /// <summary>Far beyond the self-test's second or so, even with a cold GPU driver.</summary>
    public static readonly TimeSpan DefaultSelfTestTimeout = TimeSpan.FromMinutes(2);

    private const string SelfTestTimer = "self-test";

    /// <summary>The known-answer self-test of <paramref name="slot"/>'s device, with the fault the environment injects for it, if any.</summary>
    public static Func<SlotHealth> DeviceSelfTest(WorkerSlot slot) =>
        () => SelfTest.KnownAnswerTest.Run(slot.Device, slot.Threads, SelfTest.SelfTestFault.FromEnvironment(slot.WorkerId)).ToHealth();

    protected override void PreStart()
    {
        if (selfTest is null)
        {
            HandleSelfTested(new SelfTestDone(SlotHealth.NotNeeded));
            return;
        }
        var check = selfTest;
        Task.Factory.StartNew(
                () =>
                {
                    try
                    {
                        return new SelfTestDone(check());
                    }
                    catch (Exception e)
                    {
                        return new SelfTestDone(new SlotHealth(false, $"self-test could not run on {slot.Device}: {e.GetType().Name}: {e.Message.Split('\n')[0]}"));
                    }
                },
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default)
            .PipeTo(Self);
        Timers.StartSingleTimer(SelfTestTimer, new SelfTestDone(new SlotHealth(false, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"self-test did not finish within {selfTestTimeout.TotalSeconds:0.#} s on {slot.Device}"))), selfTestTimeout);
    }

    protected override void PostStop() => current?.Cancellation.Cancel();

    /// <summary>The verdict is in: registration starts (an unhealthy slot registers too, so the sweep knows it and why).</summary>
    private void HandleSelfTested(SelfTestDone done)
    {
        if (health is not null) return; // the first verdict stands (a self-test answering after its timeout)
        Timers.Cancel(SelfTestTimer);
        health = done.Health;
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
        current.Cancellation.Cancel();
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
        var self = Self;
        var observer = new ForwardingObserver(attempt, trial, self);
        var resumeFrom = ResumeFromIfPresent(trial);
        CleanUpAtStart(trial, resumeFrom);
        if (resumeFrom is not null && CheckpointFiles.IterationOf(trial.CheckpointPath, resumeFrom) is { } resumeIteration) attempt.Own(resumeIteration, resumeFrom);
        var options = new TrainingOptions(slot.Threads, slot.Device, trial.CheckpointPath, resumeFrom, CheckpointOnCancel: true, VersionedCheckpoints: true);
        var runner = runners(trial.Model);
        TrialLogFor(trial).Info("Worker {Worker} runs trial {TrialName} attempt {Attempt}", slot.WorkerId, trial.Trial.Name, trial.Attempt);

        Task.Factory.StartNew(
                () => RunAttempt(runner, trial, options, observer, attempt, self),
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default)
            .ContinueWith(
                task => new AttemptFinished(trial, task.IsCompletedSuccessfully ? task.Result : null, task.Exception?.GetBaseException()),
                TaskContinuationOptions.ExecuteSynchronously)
            .PipeTo(self);
    }

    /// <summary>
    /// Runs on the training thread. A checkpoint that cannot be read is treated like a missing one,
    /// once: the coordinator is told why (through the worker, which keeps the report), the trial's
    /// versioned files go (the damaged one with them) and the same attempt runs from scratch at
    /// once. Loaders throw before anything is reported, so nothing of the failed start reaches the coordinator.
    /// </summary>
    private static TrainingResult RunAttempt(ITrialRunner runner, RunTrial trial, TrainingOptions options, ITrainingObserver observer, Attempt attempt, IActorRef self)
    {
        try
        {
            return runner.Run(trial, options, observer, attempt.Cancellation.Token);
        }
        catch (CheckpointUnreadableException damage) when (options.ResumeFrom is { } path)
        {
            self.Tell(new Report(new TrialCheckpointMissing(trial.Trial.Id, trial.Attempt, path, damage.Cause)));
            attempt.DisownAll();
            var failures = CheckpointFiles.Delete(TrialFilesIn(trial, [options.CheckpointPath!, path]));
            self.Tell(new StartedOver(trial, damage, failures));
            return runner.Run(trial, options with { ResumeFrom = null }, observer, attempt.Cancellation.Token);
        }
    }

    /// <summary>
    /// Before an attempt writes anything: with a checkpoint to resume from, the trial's other
    /// versioned files go (older ones are superseded; newer ones were written after the journal's last
    /// record, by an attempt whose end the journal never saw), in its folder and in the folder this
    /// attempt writes to; from scratch, all of them. The unversioned file of older sweeps is left alone.
    /// </summary>
    private void CleanUpAtStart(RunTrial trial, string? resumeFrom)
    {
        var stale = TrialFilesIn(trial, resumeFrom is null ? [trial.CheckpointPath] : [trial.CheckpointPath, resumeFrom])
            .Where(path => resumeFrom is null || !CheckpointFiles.SameFile(path, resumeFrom));
        LogDeleteFailures(trial, CheckpointFiles.Delete(stale));
    }

    /// <summary>The trial's versioned checkpoint files (and unfinished writes of them) in the folders of <paramref name="paths"/>.</summary>
    private static IEnumerable<string> TrialFilesIn(RunTrial trial, IEnumerable<string> paths) =>
        paths.Select(path => Path.GetDirectoryName(Path.GetFullPath(path))!)
            .Distinct(StringComparer.Ordinal)
            .SelectMany(directory => CheckpointFiles.VersionedIn(trial.CheckpointPath, directory))
            .ToList();

    /// <summary>The journal holds the checkpoint at the acknowledged iteration: the attempt's earlier files are superseded, and its reports up to it are delivered.</summary>
    private void HandleRecorded(TrialCheckpointRecorded recorded)
    {
        outbox.Acknowledge(recorded);
        var attempt = current is { } running && running.Is(recorded.TrialId, recorded.Attempt) ? running
            : previous is { } ended && ended.Is(recorded.TrialId, recorded.Attempt) ? ended
            : null;
        if (attempt is null) return;
        LogDeleteFailures(attempt.Trial, CheckpointFiles.Delete(attempt.ReleaseBefore(recorded.Iteration)));
    }

    private void HandleStartedOver(StartedOver over)
    {
        TrialLogFor(over.Trial).Warning("Checkpoint {Checkpoint} of trial {TrialName} cannot be used ({Reason}): attempt {Attempt} starts from scratch", over.Damage.Path, over.Trial.Trial.Name, over.Damage.Cause, over.Trial.Attempt);
        LogDeleteFailures(over.Trial, over.DeleteFailures);
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
        if (File.Exists(path)) return path;
        TrialLogFor(trial).Warning("Checkpoint {Checkpoint} of trial {TrialName} is not on this node: it starts from scratch", path, trial.Trial.Name);
        Send(new TrialCheckpointMissing(trial.Trial.Id, trial.Attempt, path));
        return null;
    }

    private void HandleStop(StopTrial stop)
    {
        if (current is null || current.Trial.Trial.Id != stop.TrialId || current.Trial.Attempt != stop.Attempt) return;
        current.Cancellation.Cancel();
    }

    private void HandleFinished(AttemptFinished finished)
    {
        var attempt = current;
        current = null;
        previous = attempt;
        var trial = finished.Trial;
        var ended = finished switch
        {
            { Error: TrialOutOfMemoryException oom } => End(TrialEndKind.OutOfMemory, attempt?.LastIteration ?? 0, oom.Message),
            { Error: InvalidInputException bad } => End(TrialEndKind.Failed, 0, bad.Message),
            { Error: FaultBeforeLearningException fault } => End(TrialEndKind.Failed, 0, fault.Message),
            { Error: { } error } => End(TrialEndKind.Failed, attempt?.LastIteration ?? 0, $"{error.GetType().Name}: {error.Message.Split('\n')[0]}"),
            { Result: { Outcome: TrialOutcome.Completed } result } => End(TrialEndKind.Completed, result.Iteration, null),
            { Result: { Outcome: TrialOutcome.Diverged, Divergence.Iteration: 0 } result } =>
                End(TrialEndKind.Failed, 0, DivergencePolicy.NonFiniteBeforeLearning("training loss", result.Divergence!.Loss)),
            { Result: { Outcome: TrialOutcome.Diverged } result } => End(TrialEndKind.Diverged, result.Divergence!.Iteration, result.Divergence.Reason),
            { Result: { } } when attempt?.FaultReason is { } fault => End(TrialEndKind.Failed, 0, fault),
            { Result: { } result } when attempt?.DivergenceReason is { } reason => End(TrialEndKind.Diverged, attempt.LastIteration, reason),
            { Result: { } result } => End(TrialEndKind.Stopped, result.Iteration, attempt?.StopReason, result.CheckpointPath),
            _ => End(TrialEndKind.Failed, 0, "the attempt ended without a result"),
        };
        TrialLogFor(trial).Info("Trial {TrialName} attempt {Attempt} ended on {Worker}: {Outcome} at iteration {Iteration} {Reason}", trial.Trial.Name, trial.Attempt, slot.WorkerId, ended.Kind, ended.Iteration, ended.Reason ?? "");
        Send(ended);
        attempt?.Cancellation.Dispose();
        leaveRequester?.Tell(new Left(slot.WorkerId));

        TrialEnded End(TrialEndKind kind, int iteration, string? reason, string? checkpoint = null) =>
            new(trial.Trial.Id, trial.Attempt, kind, iteration, reason, checkpoint);
    }

    /// <summary>
    /// Runs on the training thread: hands each report to the worker (Tell is thread-safe), which
    /// keeps it until acknowledged and sends it on, and stops the attempt the moment the sweep's
    /// divergence policy says so.
    /// </summary>
    private sealed class ForwardingObserver(Attempt attempt, RunTrial trial, IActorRef worker) : ITrainingObserver
    {
        private double? firstTrainLoss;

        public void OnMetrics(TrialMetrics metrics)
        {
            if (DivergencePolicy.FaultBeforeLearning(metrics) is { } fault)
            {
                attempt.FaultReason = fault;
                attempt.Cancellation.Cancel();
                return;
            }
            attempt.LastIteration = metrics.Iteration;
            if (metrics.Iteration == 0) firstTrainLoss = metrics.TrainLoss;
            worker.Tell(new Report(new TrialProgressed(trial.Trial.Id, trial.Attempt, metrics)));
            if (trial.Divergence.Check(metrics, firstTrainLoss) is { } reason)
            {
                attempt.DivergenceReason = reason;
                attempt.Cancellation.Cancel();
            }
        }

        public void OnCheckpoint(int iteration, string path)
        {
            // Owned before the coordinator hears of it, so its acknowledgement always finds the file.
            attempt.Own(iteration, path);
            worker.Tell(new Report(new TrialCheckpointSaved(trial.Trial.Id, trial.Attempt, iteration, path)));
        }
    }
}
