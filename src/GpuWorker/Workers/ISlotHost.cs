using Akka.Event;
using Sweep.GpuWorker.Runners;
using Sweep.GpuWorker.Training;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;

namespace Sweep.GpuWorker.Workers;

/// <summary>
/// Where a slot's trials train, as its <see cref="TrialWorker"/> sees it: a worker process of its
/// own (<see cref="WorkerProcessSlot"/>, what every `sweep` node runs), or a thread of the calling
/// process (<see cref="InThreadSlot"/>, for tests of the actor with scripted runners). Everything a
/// host has to say goes to the <c>deliver</c> callback given to <see cref="Start"/>, from any
/// thread: <see cref="WorkerProcessReady"/> with the slot's self-test verdict (again after each
/// restart), then per attempt its reports in order and, last, its <see cref="TrialEnded"/>.
/// </summary>
public interface ISlotHost : IDisposable
{
    /// <summary>
    /// Starts the host (a process, or its self-test), or attaches to one started ahead: its verdict
    /// comes as <see cref="WorkerProcessReady"/>. <paramref name="log"/> gets the host's own news
    /// (a process's log lines, a process that died).
    /// </summary>
    void Start(Action<ISweepMessage> deliver, ILoggingAdapter log);

    /// <summary>Runs one attempt (one at a time); its <see cref="RunTrial.ResumeFrom"/> is a file on this node, or null.</summary>
    void Run(RunTrial trial);

    /// <summary>Stops the attempt if it is the one running, with a checkpoint; its end still comes as <see cref="TrialEnded"/> (Stopped).</summary>
    void Stop(string trialId, int attempt);
}

/// <summary>
/// A slot whose trials run on a thread of this process with the given runners: the actor's tests
/// script runs this way. A real node never does (<see cref="WorkerProcessSlot"/>): one trial's
/// native crash would end every slot of the process.
/// </summary>
/// <param name="slot">The slot (its device and thread count are the training options).</param>
/// <param name="runners">What runs each model.</param>
/// <param name="selfTest">The slot's self-test, run once on a thread of its own; null: <see cref="SlotHealth.NotNeeded"/>.</param>
public sealed class InThreadSlot(WorkerSlot slot, Func<ModelKind, ITrialRunner> runners, Func<SlotHealth>? selfTest) : ISlotHost
{
    private Action<ISweepMessage> deliver = _ => { };
    private (RunTrial Trial, CancellationTokenSource Cancellation)? running;

    public void Start(Action<ISweepMessage> deliver, ILoggingAdapter log)
    {
        this.deliver = deliver;
        var check = selfTest;
        if (check is null)
        {
            deliver(new WorkerProcessReady(Environment.ProcessId, SlotHealth.NotNeeded));
            return;
        }
        Task.Factory.StartNew(() => deliver(new WorkerProcessReady(Environment.ProcessId, SlotSelfTest.Verdict(check, slot.Device))), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public void Run(RunTrial trial)
    {
        var cancellation = new CancellationTokenSource();
        lock (this) running = (trial, cancellation);
        var options = TrainingOptionsOf(slot, trial);
        var runner = runners(trial.Model);
        Task.Factory.StartNew(
            () =>
            {
                var ended = AttemptRun.Run(runner, trial, options, deliver, cancellation.Token);
                lock (this) running = null;
                deliver(ended);
                cancellation.Dispose();
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
    }

    public void Stop(string trialId, int attempt)
    {
        lock (this)
        {
            if (running is { } now && now.Trial.Trial.Id == trialId && now.Trial.Attempt == attempt) now.Cancellation.Cancel();
        }
    }

    public void Dispose()
    {
        lock (this) running?.Cancellation.Cancel();
    }

    /// <summary>How a slot trains an attempt: its threads and device, versioned checkpoints, a checkpoint when stopped.</summary>
    public static TrainingOptions TrainingOptionsOf(WorkerSlot slot, RunTrial trial) =>
        new(slot.Threads, slot.Device, trial.CheckpointPath, trial.ResumeFrom, CheckpointOnCancel: true, VersionedCheckpoints: true);
}

/// <summary>A slot's self-test verdict: one that throws is an unhealthy verdict, never an exception.</summary>
public static class SlotSelfTest
{
    /// <summary>Runs <paramref name="check"/>; an exception is the verdict "self-test could not run on DEVICE: …".</summary>
    public static SlotHealth Verdict(Func<SlotHealth> check, string device)
    {
        try
        {
            return check();
        }
        catch (Exception e)
        {
            return new SlotHealth(false, $"self-test could not run on {device}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
        }
    }
}
