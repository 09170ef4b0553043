using Akka.Actor;
using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Running;

/// <summary>
/// Subscribes to a coordinator and shows its events through a <see cref="ProgressView"/>;
/// completes <paramref name="finished"/> with the final state (Completed, or Interrupted when the
/// coordinator halted the sweep, with the reason in <see cref="SweepSnapshot.InterruptReason"/>). Follows the coordinator when it
/// moves to another node (cluster failover) by subscribing again through the same address.
/// </summary>
public sealed class ProgressPrinter : ReceiveActor, IWithTimers
{
    private const string ResubscribeTimer = "resubscribe";
    private readonly IActorRef coordinator;
    private readonly ProgressView view;
    private IActorRef? watched;

    private sealed record Resubscribe;

    /// <summary>
    /// Asks the printer to remove its live block for good before the asker writes lines of its own to
    /// the same terminal (the redraw would otherwise move the cursor over them); answered with
    /// <see cref="ViewFinished"/>. Later events are shown as plain lines.
    /// </summary>
    public sealed record FinishView
    {
        /// <summary>The one instance.</summary>
        public static readonly FinishView Instance = new();
    }

    /// <summary>The answer to <see cref="FinishView"/>: the block is gone.</summary>
    public sealed record ViewFinished
    {
        /// <summary>The one instance.</summary>
        public static readonly ViewFinished Instance = new();
    }

    public ProgressPrinter(IActorRef coordinator, SweepSnapshot initial, TextWriter output, TaskCompletionSource<SweepSnapshot> finished)
    {
        this.coordinator = coordinator;
        view = new ProgressView(SweepState.FromSnapshot(initial), output, ProgressView.IsTerminal(output));

        Receive<SweepSnapshot>(snapshot =>
        {
            view.Reset(SweepState.FromSnapshot(snapshot));
            WatchCoordinator();
        });
        Receive<ISweepEvent>(view.Apply);
        // The journal failed (the coordinator may be on another node): the process that runs the sweep hears it on its event stream.
        Receive<SweepJournalFailed>(failed =>
        {
            Context.System.EventStream.Publish(failed);
            view.Finish();
            Context.Stop(Self);
        });
        Receive<Terminated>(_ =>
        {
            view.Note("the coordinator moved; following it");
            Timers.StartPeriodicTimer(ResubscribeTimer, new Resubscribe(), TimeSpan.FromSeconds(2));
        });
        Receive<Resubscribe>(_ => coordinator.Tell(new SubscribeToSweep()));
        Receive<FinishView>(_ =>
        {
            view.Finish();
            Sender.Tell(ViewFinished.Instance);
        });
        Receive<SweepFinished>(done =>
        {
            view.Finish();
            finished.TrySetResult(done.Snapshot);
            Context.Stop(Self);
        });
        // Halted (no healthy slot): the snapshot is Interrupted and carries the reason.
        Receive<SweepHalted>(halted =>
        {
            view.Finish();
            finished.TrySetResult(halted.Snapshot);
            Context.Stop(Self);
        });
        coordinator.Tell(new SubscribeToSweep());
    }

    /// <summary>Set by Akka.NET.</summary>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Gives stderr back (see <see cref="ProgressView"/>), leaving the screen as it is: whoever stopped the printer may have written under the block.</summary>
    protected override void PostStop()
    {
        view.Dispose();
        base.PostStop();
    }

    /// <summary>The printer's props: it subscribes to <paramref name="coordinator"/> at once and completes <paramref name="finished"/> when the sweep ends or halts.</summary>
    public static Props Props(IActorRef coordinator, SweepSnapshot initial, TextWriter output, TaskCompletionSource<SweepSnapshot> finished) =>
        Akka.Actor.Props.Create(() => new ProgressPrinter(coordinator, initial, output, finished));

    /// <summary>The coordinator that answered the subscription: if it dies, its successor is found through the same address.</summary>
    private void WatchCoordinator()
    {
        Timers.Cancel(ResubscribeTimer);
        if (Sender.Equals(watched)) return;
        if (watched is not null) Context.Unwatch(watched);
        watched = Sender;
        Context.Watch(Sender);
    }
}
