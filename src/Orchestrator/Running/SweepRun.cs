using Akka.Actor;
using Akka.Event;
using Sweep.GpuWorker.Training;
using Sweep.GpuWorker.Workers;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Protocol;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Orchestrator.Cluster;
using Sweep.Orchestrator.Journal;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Running;

/// <summary>How many worker slots this machine offers, and the LibTorch threads of each.</summary>
public sealed record WorkerLayout(int Workers, int Threads)
{
    /// <summary>
    /// One slot per CUDA device when there are any (LeNet and plug-ins only: a synthetic sweep never loads
    /// LibTorch); otherwise one CPU slot per core with one LibTorch thread each. LeNet's small
    /// batches use extra intra-op threads poorly: on two cores the paper preset finishes in 105 s as
    /// two one-thread slots against 151 s as one two-thread slot (docs/benchmarks.md, `packing`).
    /// </summary>
    public static WorkerLayout For(ModelKind model, int? workers, int? threads)
    {
        int cuda = model.TrainsWithTorch() ? CudaDevices.Count : 0;
        int slots = workers ?? (cuda > 0 ? cuda : Environment.ProcessorCount);
        if (slots < 0) throw new InvalidInputException($"--workers must be zero or positive, got {slots}");
        int perSlot = threads ?? (cuda > 0 ? Environment.ProcessorCount : Math.Max(1, Environment.ProcessorCount / Math.Max(1, slots)));
        if (TrainingOptions.ThreadsProblem(perSlot, "--threads") is { } problem) throw new InvalidInputException(problem);
        return new WorkerLayout(slots, perSlot);
    }

    public string DeviceOf(ModelKind model, int slot) =>
        model.TrainsWithTorch() && CudaDevices.Count > 0 ? $"cuda:{slot % CudaDevices.Count}" : "cpu";

    /// <summary>
    /// Why this layout would slow its own trials down, or null: CPU slots asking for more LibTorch
    /// threads than there are cores. Each slot's OpenMP team then waits for threads the OS has
    /// parked, and libgomp stops spin-waiting once threads outnumber cores: about 20% slower on
    /// this project's machines (docs/benchmarks.md, `trainer`).
    /// </summary>
    public string? OversubscriptionWarning(ModelKind model)
    {
        if (!model.TrainsWithTorch() || CudaDevices.Count > 0) return null;
        int cores = Environment.ProcessorCount;
        return Workers * Threads <= cores
            ? null
            : $"{Workers} CPU slot(s) x {Threads} LibTorch thread(s) = {Workers * Threads} threads on {cores} core(s): trials will slow each other down; use --workers/--threads with a product of at most {cores}";
    }
}

/// <summary>
/// The CUDA devices this node can train on, counted without loading LibTorch (only worker processes
/// do): the NVIDIA driver's devices (<c>/proc/driver/nvidia/gpus</c>), when this build carries CUDA
/// LibTorch (<c>libtorch_cuda.so</c> next to the program; built with <c>-p:TorchBackend=cuda</c>); 0 otherwise.
/// </summary>
public static class CudaDevices
{
    private static readonly Lazy<int> Counted = new(() =>
    {
        const string driver = "/proc/driver/nvidia/gpus";
        bool cudaBuild = File.Exists(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libtorch_cuda.so"))
                         || File.Exists(Path.Combine(AppContext.BaseDirectory, "libtorch_cuda.so"));
        return cudaBuild && Directory.Exists(driver) ? Directory.GetDirectories(driver).Length : 0;
    });

    /// <summary>How many; one worker slot each.</summary>
    public static int Count => Counted.Value;
}

/// <summary>
/// This process's worker slots: one actor each (<see cref="TrialWorker"/>), registering with the
/// coordinator once its worker process has given the slot's self-test verdict.
/// </summary>
public static class WorkerSlots
{
    /// <summary>The slots of <paramref name="layout"/> on <paramref name="node"/>: ids "NODE/DEVICE-N", N from 1.</summary>
    public static IReadOnlyList<WorkerSlot> Of(string node, ModelKind model, WorkerLayout layout) =>
        Enumerable.Range(0, layout.Workers).Select(slot =>
        {
            var device = layout.DeviceOf(model, slot);
            return new WorkerSlot($"{node}/{device}-{slot + 1}", node, device, layout.Threads);
        }).ToList();

    /// <summary>
    /// Starts the worker processes of a local sweep's slots before their actors exist (so they come
    /// up while the actor system starts and the journal is read); hand them to <see cref="Start"/>.
    /// A slot that may train a real model proves its device's arithmetic there first (a synthetic
    /// sweep's processes never load LibTorch).
    /// </summary>
    public static IReadOnlyList<WorkerProcessSlot> StartAhead(ModelKind model, WorkerLayout layout) =>
        Of(Environment.MachineName, model, layout).Select(slot => new WorkerProcessSlot(slot, selfTest: model.TrainsWithTorch()).StartAhead()).ToList();

    /// <summary>
    /// Starts the slots' actors, each with its worker process: those of <paramref name="startedAhead"/>
    /// (in slot order), or new ones.
    /// </summary>
    public static IReadOnlyList<IActorRef> Start(ActorSystem system, IActorRef coordinator, ModelKind model, WorkerLayout layout, IReadOnlyList<WorkerProcessSlot>? startedAhead = null)
    {
        var node = system.Settings.Config.GetString("akka.actor.provider", "") == "cluster"
            ? Akka.Cluster.Cluster.Get(system).SelfAddress.HostPort()
            : Environment.MachineName;
        if (layout.OversubscriptionWarning(model) is { } warning) system.Log.Warning(warning);
        return Of(node, model, layout)
            .Select((slot, i) => system.ActorOf(TrialWorker.InWorkerProcess(slot, coordinator, selfTest: model.TrainsWithTorch(), startedAhead: startedAhead?[i]), $"worker-{i + 1}"))
            .ToList();
    }
}

/// <summary>
/// Runs (or resumes) one sweep from this process: on this machine alone, or, with
/// <see cref="ClusterOptions"/>, as a node of a cluster whose singleton director hosts the
/// coordinator. Starts the local worker slots, prints progress, and stops gracefully on Ctrl+C
/// (running trials checkpoint, everything is persisted, the resume command is printed).
/// </summary>
public static class SweepRun
{
    /// <summary>
    /// The worker processes of a local sweep, started before their slots' actors exist; those no
    /// actor took over (the sweep was refused, or failed before it ran) are stopped on Dispose.
    /// </summary>
    private sealed class ProcessesStartedAhead(bool local, Func<ModelKind, WorkerLayout> layoutFor) : IDisposable
    {
        private readonly Lock gate = new();
        private IReadOnlyList<WorkerProcessSlot>? processes;
        private ModelKind model;
        private bool startedOrOver;

        /// <summary>
        /// Starts them for a sweep of <paramref name="of"/>, once (from any thread; not after <see cref="HandOver"/>
        /// or <see cref="Dispose"/>); not on a cluster node (its slots are named after its cluster address).
        /// </summary>
        public void Start(ModelKind of)
        {
            lock (gate)
            {
                if (!local || startedOrOver) return;
                startedOrOver = true;
                model = of;
                processes = WorkerSlots.StartAhead(of, layoutFor(of));
            }
        }

        /// <summary>The processes, for the slots' actors to own, when started for <paramref name="of"/>; null otherwise.</summary>
        public IReadOnlyList<WorkerProcessSlot>? HandOver(ModelKind of)
        {
            lock (gate)
            {
                startedOrOver = true;
                var handed = processes is not null && model == of ? processes : null;
                if (handed is not null) processes = null;
                return handed;
            }
        }

        public void Dispose()
        {
            lock (gate)
            {
                startedOrOver = true;
                foreach (var process in processes ?? []) process.Dispose();
                processes = null;
            }
        }
    }

    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromMinutes(2);

    /// <summary>How long stopping workers may take to write their checkpoints after the journal failed, before the process exits anyway.</summary>
    private static readonly TimeSpan JournalFailureStopTimeout = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Runs (or resumes) the sweep: claims it in the journal first (a sweep another live process owns
    /// is refused at once, <see cref="InvalidInputException"/>), checks what can fail before
    /// anything is persisted (the dashboard's port), then runs it to its end. When
    /// <paramref name="idIsDefault"/>, an id another process took first is made unique with a suffix (-2, -3, …).
    /// Exit codes: 0 done, 1 failures or a halt or a journal failure, 130 interrupted.
    /// </summary>
    public static async Task<int> RunAsync(
        JournalSettings journal,
        string sweepId,
        ISweepMessage startOrResume,
        Func<ModelKind, WorkerLayout> layoutFor,
        TextWriter output,
        CancellationToken interrupt,
        ClusterOptions? cluster = null,
        int? dashboardPort = null,
        bool idIsDefault = false)
    {
        cluster?.Validate(journal);
        cluster?.RequirePortFree();
        // A node that runs trials needs the worker-process program next to it (an incomplete installation is said before anything is persisted).
        if (cluster?.HostsWorkers != false) WorkerProgram.RequireStartable();
        // A drill variable with a typo is refused before anything is persisted.
        GpuWorker.SelfTest.SelfTestFault.FromEnvironment();
        var owner = OwnerIdentity.ThisProcess(cluster is null ? null : ClusterNode.AddressOf(cluster));
        // A node that joins a cluster claims nothing itself: the cluster's coordinator holds the claim, wherever it runs.
        bool claims = cluster?.Join is null;
        // A local sweep starts its worker processes first: they come up while the sweep is claimed,
        // the actor system starts and the journal is read (a resumed one's as soon as its model is read).
        using var ahead = new ProcessesStartedAhead(local: cluster is null, layoutFor);
        if (startOrResume is StartSweep start) ahead.Start(start.Definition.Model);
        // A resumed sweep is in the journal already: its state is read (read only: before the claim)
        // while it is claimed, the actor system starts and the coordinator recovers (the progress
        // printer catches up on what was persisted after this read).
        // (On a thread of its own: Microsoft.Data.Sqlite's async methods run synchronously.)
        // Not cancelled by Ctrl+C: once the coordinator has accepted the sweep, an interrupt is handled below (trials stopped, the resume hint).
        var readEarly = startOrResume is ResumeSweep ? Task.Run(() => SweepJournal.ReadAtAsync(journal, sweepId, CancellationToken.None)) : null;
        // …and names the model its worker processes are started for.
        _ = readEarly?.ContinueWith(read =>
        {
            if (read.IsCompletedSuccessfully && read.Result is { } found) ahead.Start(found.State.Definition.Model);
        }, TaskScheduler.Default);
        if (claims) sweepId = await ClaimAsync(journal, sweepId, owner, idIsDefault);
        bool started = startOrResume is ResumeSweep;
        try
        {
            return await RunClaimedAsync(journal, sweepId, startOrResume, layoutFor, output, interrupt, cluster, dashboardPort, owner, ahead, readEarly, () => started = true);
        }
        finally
        {
            // A sweep that never started leaves no trace: its id stays free.
            if (claims) await SweepOwnership.ReleaseAsync(journal, sweepId, owner, forget: !started);
        }
    }

    /// <summary>Claims the sweep for this process; a default id already taken gets the next free suffix.</summary>
    /// <summary>
    /// The threads of each worker as the header says them: LibTorch's for the models it trains; a
    /// command trial's program only receives the number (SWEEP_THREADS) and does with it what it will.
    /// </summary>
    private static string ThreadsText(ModelKind model, int threads) =>
        model == ModelKind.Command ? $"(each program told SWEEP_THREADS={threads})" : $"x {threads} thread(s)";

    private static async Task<string> ClaimAsync(JournalSettings journal, string sweepId, OwnerIdentity owner, bool idIsDefault)
    {
        if (!journal.IsPostgres)
        {
            Directory.CreateDirectory(journal.DataDirectory);
            Directory.CreateDirectory(Path.GetDirectoryName(journal.JournalFile)!);
        }
        for (int suffix = 1; ; suffix++)
        {
            var candidate = suffix == 1 ? sweepId : $"{sweepId}-{suffix}";
            try
            {
                if (idIsDefault && await SweepOwnership.ExistsAsync(journal, candidate)) continue;
                await SweepOwnership.ClaimAsync(journal, candidate, owner, OwnershipSettings.Current);
                return candidate;
            }
            catch (InvalidInputException) when (idIsDefault && suffix < 100)
            {
                // Another process took this default id in the same second: try the next.
            }
            catch (System.Data.Common.DbException e)
            {
                var fault = JournalFaults.Describe(e);
                throw new JournalUnavailableException($"journal {journal.Description}: {fault.Cause}; nothing was changed, {fault.Advice} and try again");
            }
        }
    }

    private static async Task<int> RunClaimedAsync(
        JournalSettings journal,
        string sweepId,
        ISweepMessage startOrResume,
        Func<ModelKind, WorkerLayout> layoutFor,
        TextWriter output,
        CancellationToken interrupt,
        ClusterOptions? cluster,
        int? dashboardPort,
        OwnerIdentity owner,
        ProcessesStartedAhead ahead,
        Task<SweepJournal.SweepRead?>? readEarly,
        Action onStarted)
    {
        await using var sweepSystem = await SweepSystem.StartAsync(journal, cluster, logName: sweepId);
        var system = sweepSystem.System;
        var journalFailed = new TaskCompletionSource<SweepJournalFailed>(TaskCreationOptions.RunContinuationsAsynchronously);
        var journalNotStarted = new TaskCompletionSource<SweepJournalFailed>(TaskCreationOptions.RunContinuationsAsynchronously);
        system.ActorOf(Akka.Actor.Props.Create(() => new JournalFailureListener(sweepId, journalFailed, journalNotStarted)), "journal-failures");

        // Every check that can fail runs before anything is persisted: the dashboard binds its port first.
        await using var dashboard = dashboardPort is { } port
            ? Dashboard.DashboardServer.Build(journal, Dashboard.DashboardServer.UseKestrel(Dashboard.DashboardServer.DefaultBind, port))
            : null;
        if (dashboard is not null)
        {
            try
            {
                await dashboard.StartAsync(CancellationToken.None);
            }
            catch (IOException e)
            {
                throw new InvalidInputException($"--dashboard-port {dashboardPort}: cannot serve there ({e.Message.Split('\n')[0]}); choose another port, or 0 for a free one");
            }
        }

        // Ctrl+C before the coordinator exists: nothing was persisted, the sweep leaves no trace (its
        // claim is forgotten). From here on the journal plugin starts and the coordinator is asked; an
        // interrupt is then handled once it answered (trials stopped, the resume hint).
        interrupt.ThrowIfCancellationRequested();
        var coordinator = cluster is null
            ? system.ActorOf(SweepCoordinator.Props(sweepId, new CoordinatorSettings(journal.CheckpointDirectory, LeaseFor: SweepOwnership.LeaseFor(journal, owner, OwnershipSettings.Current))), "sweep-" + sweepId)
            : await ClusterNode.OpenSweepAsync(system, journal, sweepId, AskTimeout, output, cluster.Join is null ? owner : null);

        // Until the coordinator answers, a journal plugin that cannot start is a failure too (afterwards the coordinator says what failed).
        var failedBeforeAnswer = Task.WhenAny(journalFailed.Task, journalNotStarted.Task).Unwrap();
        var answer = await AnswerOrJournalFailure(StartOrResume(coordinator, startOrResume, remote: cluster is not null), failedBeforeAnswer, journal, sweepId, fresh: startOrResume is StartSweep);
        if (answer is SweepRefused refused) throw new InvalidInputException(refused.Reason);
        onStarted();
        var accepted = (SweepAccepted)answer;
        if (accepted.Model is { } acceptedModel) ahead.Start(acceptedModel);
        // The state is read from the journal here, never sent by the coordinator (which may be on another node: a large sweep's state does not fit one remote message).
        var current = await (readEarly ?? SweepJournal.ReadAtAsync(journal, sweepId, CancellationToken.None))
            ?? throw new InvalidOperationException($"sweep {sweepId} was accepted but is not in {journal.Description}");
        var snapshot = current.State.ToSnapshot();
        var layout = layoutFor(snapshot.Definition.Model);
        output.WriteLine($"sweep {sweepId} ({SafeText.Line(snapshot.Definition.Name)}): {accepted.Remaining} of {accepted.Trials} trial(s) to run on {layout.Workers} local worker(s) {ThreadsText(snapshot.Definition.Model, layout.Threads)}; journal {journal.Description}"
                         + (cluster is null ? "" : $"; cluster node {Akka.Cluster.Cluster.Get(system).SelfAddress}"));
        if (dashboard is not null)
        {
            foreach (var url in Dashboard.DashboardServer.Addresses(dashboard)) output.WriteLine($"dashboard at {url}/ while the sweep runs");
        }

        var finished = new TaskCompletionSource<ISweepMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var progress = system.ActorOf(ProgressPrinter.Props(coordinator, journal, current, output, finished), "progress");
        var slots = WorkerSlots.Start(system, coordinator, snapshot.Definition.Model, layout, ahead.HandOver(snapshot.Definition.Model));
        if (cluster is null && layout.Workers > 0) coordinator.Tell(new ExpectLocalSlots(layout.Workers));

        var interrupted = Task.Delay(Timeout.Infinite, interrupt);
        var ended = await Task.WhenAny(finished.Task, interrupted, system.WhenTerminated, journalFailed.Task);
        if (ended == journalFailed.Task)
        {
            // Nothing more can be recorded: the slots stop their trials (the journal's last checkpoint of each is what a resume uses), then the process ends.
            var failure = journalFailed.Task.Result;
            await FinishViewAsync(progress);
            output.WriteLine();
            output.WriteLine($"the journal failed: stopping the running trials…");
            output.Flush();
            try
            {
                await Task.WhenAll(slots.Select(slot => slot.Ask<TrialWorker.Left>(new TrialWorker.Leave(), JournalFailureStopTimeout)));
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                output.WriteLine($"a worker slot did not stop within {JournalFailureStopTimeout.TotalSeconds:0} s; it ends with this process");
            }
            output.WriteLine(JournalFailureLine(journal, sweepId, failure));
            return 1;
        }
        if (ended == system.WhenTerminated)
        {
            await FinishViewAsync(progress);
            output.WriteLine("this node was removed from the cluster (downed); the sweep goes on without it: 'sweep resume' or --join to come back");
            return 1;
        }
        if (ended == finished.Task && finished.Task.Result is SweepHalted)
        {
            var halted = await FinalStateAsync(journal, sweepId);
            output.WriteLine();
            output.WriteLine(StatusView.Table(halted));
            output.WriteLine($"nothing was lost; once the cause is fixed, continue with: sweep resume {sweepId} {journal.CommandLine}");
            return 1;
        }
        if (ended == finished.Task)
        {
            var final = await FinalStateAsync(journal, sweepId);
            output.WriteLine();
            output.WriteLine(StatusView.Table(final));
            await WriteReportAsync(journal, sweepId, output);
            return final.HasFailures ? 1 : 0;
        }

        await FinishViewAsync(progress);
        output.WriteLine("interrupted: stopping running trials with a checkpoint…");
        await AnswerOrJournalFailure(coordinator.Ask<SweepStopped>(new StopSweep(), StopTimeout), journalFailed.Task, journal, sweepId);
        var state = await FinalStateAsync(journal, sweepId);
        output.WriteLine($"sweep {sweepId}: {state.FinishedCount} of {state.Trials.Count} trial(s) finished; everything is in {journal.Description}");
        output.WriteLine($"continue with: sweep resume {sweepId} {journal.CommandLine}");
        return 130;
    }

    /// <summary>
    /// Sends the start or the resume; in a cluster (<paramref name="remote"/>: the coordinator may be
    /// on another node) the start goes in parts small enough for one remote message each, and the
    /// answer is the coordinator's to the last part. In-process, nothing is serialized: it goes whole.
    /// </summary>
    private static Task<ISweepMessage> StartOrResume(IActorRef coordinator, ISweepMessage startOrResume, bool remote)
    {
        if (startOrResume is not StartSweep start || !remote) return coordinator.Ask<ISweepMessage>(startOrResume, AskTimeout);
        var parts = StartSweep.InParts(start.Definition);
        foreach (var part in parts.Take(parts.Count - 1)) coordinator.Tell(part);
        return coordinator.Ask<ISweepMessage>(parts[^1], AskTimeout);
    }

    /// <summary>The sweep's state as the journal holds it once the coordinator said it ended or stopped (recorded before it says so).</summary>
    private static async Task<SweepState> FinalStateAsync(JournalSettings journal, string sweepId) =>
        await SweepJournal.ReadAsync(journal, sweepId) ?? throw new InvalidOperationException($"sweep {sweepId} is not in {journal.Description}");

    /// <summary>Takes the live view's block off the terminal before plain lines follow (a printer that has stopped already has done so).</summary>
    private static async Task FinishViewAsync(IActorRef progress)
    {
        try
        {
            await progress.Ask<ProgressPrinter.ViewFinished>(ProgressPrinter.FinishView.Instance, TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            // The printer stopped (its coordinator is gone): nothing is drawn any more.
        }
    }

    /// <summary>"journal ./sweep-data/journal.db: disk full (…); nothing was lost, free space and run: sweep resume ID --data-dir …".</summary>
    public static string JournalFailureLine(JournalSettings journal, string sweepId, SweepJournalFailed failure) =>
        $"journal {journal.Description}: {failure.Cause}; nothing was lost, {failure.Advice} and run: sweep resume {sweepId} {journal.CommandLine}";

    /// <summary>
    /// The coordinator's answer, or, when the journal fails first, a clean exit that says so (never a
    /// 60 s ask timeout). <paramref name="fresh"/>: the answer is to a new sweep's start, so a failure
    /// means the sweep was never started, and the way on is the same `sweep run`, not a resume.
    /// </summary>
    private static async Task<T> AnswerOrJournalFailure<T>(Task<T> answer, Task<SweepJournalFailed> failed, JournalSettings journal, string sweepId, bool fresh = false)
    {
        if (await Task.WhenAny(answer, failed) == failed)
        {
            var failure = failed.Result;
            throw new JournalUnavailableException(fresh
                ? $"journal {journal.Description}: {failure.Cause}; sweep {sweepId} was not started, {failure.Advice} and run the same 'sweep run' again"
                : JournalFailureLine(journal, sweepId, failure));
        }
        return await answer;
    }

    /// <summary>
    /// Hears a coordinator of this process give up on its journal (<see cref="SweepJournalFailed"/> on
    /// the event stream: <c>failed</c>), and the journal plugin report a database error
    /// (<c>pluginFailed</c>): Akka.Persistence.Sql logs a failed initialization (it could not create
    /// its tables: a full disk, a read-only file) and retries it for ever, while the coordinator's
    /// recovery waits 30 s for it and then only says it timed out.
    /// </summary>
    private sealed class JournalFailureListener : ReceiveActor
    {
        public JournalFailureListener(string sweepId, TaskCompletionSource<SweepJournalFailed> failed, TaskCompletionSource<SweepJournalFailed> pluginFailed)
        {
            Receive<SweepJournalFailed>(f => failed.TrySetResult(f));
            Receive<Akka.Event.Error>(error =>
            {
                if (!IsPluginDatabaseError(error)) return;
                var fault = JournalFaults.Describe(error.Cause!);
                pluginFailed.TrySetResult(new SweepJournalFailed(sweepId, fault.Cause, fault.Advice));
            });
        }

        /// <summary>An error Akka.Persistence.Sql logged with a database error as its cause.</summary>
        private static bool IsPluginDatabaseError(Akka.Event.Error error)
        {
            if (error.LogClass?.Namespace?.StartsWith("Akka.Persistence.Sql", StringComparison.Ordinal) != true) return false;
            for (var e = error.Cause; e is not null; e = e.InnerException)
                if (e is System.Data.Common.DbException) return true;
            return false;
        }

        protected override void PreStart()
        {
            Context.System.EventStream.Subscribe(Self, typeof(SweepJournalFailed));
            Context.System.EventStream.Subscribe(Self, typeof(Akka.Event.Error));
        }
    }

    /// <summary>The report of a finished sweep goes to DATA-DIR/ID/report; a failure to write it is said, not fatal.</summary>
    private static async Task WriteReportAsync(JournalSettings journal, string sweepId, TextWriter output)
    {
        try
        {
            var analysis = await Reporting.SweepReportWriter.AnalyseAsync(journal, sweepId);
            var written = Reporting.SweepReportWriter.Write(analysis, Path.Combine(journal.DataDirectory, sweepId, "report"));
            output.WriteLine();
            Reporting.SweepReportWriter.Print(written, sweepId, output);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            output.WriteLine($"the report could not be written ({e.GetType().Name}: {e.Message}); try 'sweep report {sweepId} {journal.CommandLine}'");
        }
    }
}
