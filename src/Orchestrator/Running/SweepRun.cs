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

namespace Sweep.Orchestrator.Running;

/// <summary>How many worker slots this machine offers, and the LibTorch threads of each.</summary>
public sealed record WorkerLayout(int Workers, int Threads)
{
    /// <summary>
    /// One slot per CUDA device when there are any (LeNet only: a synthetic sweep never loads
    /// LibTorch); otherwise one CPU slot per core with one LibTorch thread each. LeNet's small
    /// batches use extra intra-op threads poorly: on two cores the paper preset finishes in 105 s as
    /// two one-thread slots against 151 s as one two-thread slot (docs/benchmarks.md, `packing`).
    /// </summary>
    public static WorkerLayout For(ModelKind model, int? workers, int? threads)
    {
        int cuda = model == ModelKind.Lenet ? TorchDevices.CudaDeviceCount : 0;
        int slots = workers ?? (cuda > 0 ? cuda : Environment.ProcessorCount);
        if (slots < 0) throw new InvalidInputException($"--workers must be zero or positive, got {slots}");
        int perSlot = threads ?? (cuda > 0 ? Environment.ProcessorCount : Math.Max(1, Environment.ProcessorCount / Math.Max(1, slots)));
        if (TrainingOptions.ThreadsProblem(perSlot, "--threads") is { } problem) throw new InvalidInputException(problem);
        return new WorkerLayout(slots, perSlot);
    }

    public string DeviceOf(ModelKind model, int slot) =>
        model == ModelKind.Lenet && TorchDevices.CudaDeviceCount > 0 ? $"cuda:{slot % TorchDevices.CudaDeviceCount}" : "cpu";

    /// <summary>
    /// Why this layout would slow its own trials down, or null: CPU slots asking for more LibTorch
    /// threads than there are cores. Each slot's OpenMP team then waits for threads the OS has
    /// parked, and libgomp stops spin-waiting once threads outnumber cores: about 20% slower on
    /// this project's machines (docs/benchmarks.md, `trainer`).
    /// </summary>
    public string? OversubscriptionWarning(ModelKind model)
    {
        if (model != ModelKind.Lenet || TorchDevices.CudaDeviceCount > 0) return null;
        int cores = Environment.ProcessorCount;
        return Workers * Threads <= cores
            ? null
            : $"{Workers} CPU slot(s) x {Threads} LibTorch thread(s) = {Workers * Threads} threads on {cores} core(s): trials will slow each other down; use --workers/--threads with a product of at most {cores}";
    }
}

/// <summary>
/// Starts this process's worker slots, each registering with <paramref name="coordinator"/> (the
/// coordinator, or the singleton proxy) once its self-test has given its verdict.
/// </summary>
public static class WorkerSlots
{
    public static IReadOnlyList<IActorRef> Start(ActorSystem system, IActorRef coordinator, ModelKind model, WorkerLayout layout)
    {
        var node = system.Settings.Config.GetString("akka.actor.provider", "") == "cluster"
            ? Akka.Cluster.Cluster.Get(system).SelfAddress.HostPort()
            : Environment.MachineName;
        if (layout.OversubscriptionWarning(model) is { } warning) system.Log.Warning(warning);
        var workers = new List<IActorRef>();
        for (int slot = 0; slot < layout.Workers; slot++)
        {
            var device = layout.DeviceOf(model, slot);
            var workerSlot = new WorkerSlot($"{node}/{device}-{slot + 1}", node, device, layout.Threads);
            // A slot that may train a real model proves its device's arithmetic first (a synthetic sweep never loads LibTorch).
            var selfTest = model == ModelKind.Lenet ? TrialWorker.DeviceSelfTest(workerSlot) : null;
            workers.Add(system.ActorOf(TrialWorker.Props(workerSlot, coordinator, selfTest: selfTest), $"worker-{slot + 1}"));
        }
        return workers;
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
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromMinutes(2);

    /// <summary>In a cluster, how long trials that were running when the coordinator's node died wait for their workers to claim them.</summary>
    public static readonly TimeSpan ClusterOrphanGrace = TimeSpan.FromSeconds(20);

    public static async Task<int> RunAsync(
        JournalSettings journal,
        string sweepId,
        ISweepMessage startOrResume,
        Func<SweepSnapshot, WorkerLayout> layoutFor,
        TextWriter output,
        CancellationToken interrupt,
        ClusterOptions? cluster = null,
        int? dashboardPort = null)
    {
        cluster?.Validate(journal);
        // A drill variable with a typo is refused before anything is persisted.
        GpuWorker.SelfTest.SelfTestFault.FromEnvironment();
        await using var sweepSystem = await SweepSystem.StartAsync(journal, cluster, logName: sweepId);
        var system = sweepSystem.System;
        var coordinator = cluster is null
            ? system.ActorOf(SweepCoordinator.Props(sweepId, new CoordinatorSettings(journal.CheckpointDirectory)), "sweep-" + sweepId)
            : await ClusterNode.OpenSweepAsync(system, journal, sweepId, AskTimeout, output);

        var answer = await coordinator.Ask<ISweepMessage>(startOrResume, AskTimeout);
        if (answer is SweepRefused refused) throw new InvalidInputException(refused.Reason);
        var accepted = (SweepAccepted)answer;
        var snapshot = await coordinator.Ask<SweepSnapshot>(new GetSweepState(), AskTimeout);
        var layout = layoutFor(snapshot);
        output.WriteLine($"sweep {sweepId} ({snapshot.Definition.Name}): {accepted.Remaining} of {accepted.Trials} trial(s) to run on {layout.Workers} local worker(s) x {layout.Threads} thread(s); journal {journal.Description}"
                         + (cluster is null ? "" : $"; cluster node {Akka.Cluster.Cluster.Get(system).SelfAddress}"));

        await using var dashboard = dashboardPort is { } port
            ? Dashboard.DashboardServer.Build(system, journal, Dashboard.DashboardServer.UseKestrel(Cli.DashboardCommand.DefaultBind, port))
            : null;
        if (dashboard is not null)
        {
            await dashboard.StartAsync(CancellationToken.None);
            foreach (var url in Dashboard.DashboardServer.Addresses(dashboard)) output.WriteLine($"dashboard at {url}/ while the sweep runs");
        }

        var finished = new TaskCompletionSource<SweepSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        system.ActorOf(ProgressPrinter.Props(coordinator, snapshot, output, finished), "progress");
        WorkerSlots.Start(system, coordinator, snapshot.Definition.Model, layout);
        if (cluster is null && layout.Workers > 0) coordinator.Tell(new ExpectLocalSlots(layout.Workers));

        var interrupted = Task.Delay(Timeout.Infinite, interrupt);
        var ended = await Task.WhenAny(finished.Task, interrupted, system.WhenTerminated);
        if (ended == system.WhenTerminated)
        {
            output.WriteLine("this node was removed from the cluster (downed); the sweep goes on without it: 'sweep resume' or --join to come back");
            return 1;
        }
        if (ended == finished.Task && finished.Task.Result.Phase == SweepPhase.Interrupted)
        {
            var halted = SweepState.FromSnapshot(finished.Task.Result);
            output.WriteLine();
            output.WriteLine(SweepReport.Table(halted));
            output.WriteLine($"nothing was lost; once the cause is fixed, continue with: sweep resume {sweepId} {journal.CommandLine}");
            return 1;
        }
        if (ended == finished.Task)
        {
            var final = SweepState.FromSnapshot(finished.Task.Result);
            output.WriteLine();
            output.WriteLine(SweepReport.Table(final));
            await WriteReportAsync(system, journal, sweepId, output);
            return final.HasFailures ? 1 : 0;
        }

        output.WriteLine("interrupted: stopping running trials with a checkpoint…");
        var stopped = await coordinator.Ask<SweepStopped>(new StopSweep(), StopTimeout);
        var state = SweepState.FromSnapshot(stopped.Snapshot);
        output.WriteLine($"sweep {sweepId}: {state.FinishedCount} of {state.Trials.Count} trial(s) finished; everything is in {journal.Description}");
        output.WriteLine($"continue with: sweep resume {sweepId} {journal.CommandLine}");
        return 130;
    }

    /// <summary>The report of a finished sweep goes to DATA-DIR/ID/report; a failure to write it is said, not fatal.</summary>
    private static async Task WriteReportAsync(ActorSystem system, JournalSettings journal, string sweepId, TextWriter output)
    {
        try
        {
            var analysis = await Reporting.SweepReportWriter.AnalyseAsync(system, sweepId, journal.Description);
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
