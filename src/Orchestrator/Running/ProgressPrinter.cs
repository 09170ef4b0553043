using System.Globalization;
using Akka.Actor;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Running;

/// <summary>
/// Subscribes to a coordinator and prints a plain line per trial event (works in terminals, CI
/// logs and files alike); completes <paramref name="finished"/> with the final state.
/// </summary>
public sealed class ProgressPrinter : ReceiveActor, IWithTimers
{
    private readonly TextWriter output;
    private readonly IActorRef coordinator;
    private IActorRef? watched;

    private sealed record Resubscribe;

    public ITimerScheduler Timers { get; set; } = null!;

    private void WatchCoordinator()
    {
        Timers.Cancel("resubscribe");
        if (Sender.Equals(watched)) return;
        watched = Sender;
        Context.Watch(Sender);
    }
    private readonly Dictionary<string, (string Name, int MaxIter)> trials = [];

    public ProgressPrinter(IActorRef coordinator, SweepSnapshot initial, TextWriter output, TaskCompletionSource<SweepSnapshot> finished)
    {
        this.output = output;
        this.coordinator = coordinator;
        foreach (var t in initial.Trials) trials[t.Definition.Id] = (t.Definition.Name, t.Definition.Spec.MaxIter);

        Receive<TrialStarted>(e => Line(e.TrialId, $"started attempt {e.Attempt} on {e.WorkerId}" + (e.FromIteration > 0 ? $", from the checkpoint at iteration {e.FromIteration}" : "")));
        Receive<TrialProgress>(e => Line(e.TrialId, string.Create(CultureInfo.InvariantCulture,
            $"iter {e.Metrics.Iteration}/{trials[e.TrialId].MaxIter}  train loss {e.Metrics.TrainLoss:F4}  test acc {e.Metrics.TestAccuracy:F4}  {e.Metrics.Seconds:F2} s")));
        Receive<TrialCompleted>(e => Line(e.TrialId, "completed"));
        Receive<TrialDiverged>(e => Line(e.TrialId, $"DIVERGED at iteration {e.Iteration}: {e.Reason}"));
        Receive<TrialFailed>(e => Line(e.TrialId, (e.Final ? "FAILED: " : $"attempt {e.Attempt} failed: ") + e.Error));
        Receive<TrialRequeued>(e =>
        {
            Line(e.TrialId, $"re-queued: {e.Reason}");
        });
        Receive<TrialCheckpointed>(_ => { });
        Receive<SweepSnapshot>(_ => WatchCoordinator());
        Receive<Terminated>(_ =>
        {
            // The coordinator moved (cluster failover): subscribe to its successor through the same address.
            output.WriteLine($"{DateTime.Now:HH:mm:ss} the coordinator moved; following it");
            Timers.StartPeriodicTimer("resubscribe", new Resubscribe(), TimeSpan.FromSeconds(2));
        });
        Receive<Resubscribe>(_ => coordinator.Tell(new SubscribeToSweep()));
        Receive<ISweepEvent>(_ => { });
        Receive<SweepFinished>(done =>
        {
            finished.TrySetResult(done.Snapshot);
            Context.Stop(Self);
        });
        coordinator.Tell(new SubscribeToSweep());
    }

    public static Props Props(IActorRef coordinator, SweepSnapshot initial, TextWriter output, TaskCompletionSource<SweepSnapshot> finished) =>
        Akka.Actor.Props.Create(() => new ProgressPrinter(coordinator, initial, output, finished));

    private void Line(string trialId, string text)
    {
        var name = trials.TryGetValue(trialId, out var t) ? t.Name : trialId;
        output.WriteLine($"{DateTime.Now:HH:mm:ss} {name}: {text}");
        output.Flush();
    }
}
