using Akka.Actor;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Running;

/// <summary>
/// Subscribes to a coordinator and shows its events through a <see cref="ProgressView"/>;
/// completes <paramref name="finished"/> with <see cref="SweepFinished"/> or <see cref="SweepHalted"/>
/// (the final state is in the journal). It starts from a state its creator read from the journal; on
/// the first <see cref="SweepSubscribed"/> it reads the events between that read and the event named
/// there (the state never travels between nodes), on a later one (the coordinator moved to another
/// node: cluster failover, found again through the same address) the whole state up to it, holding
/// back the events that arrive meanwhile, then applies them.
/// </summary>
public sealed class ProgressPrinter : ReceiveActor, IWithTimers, IWithUnboundedStash
{
    private const string ResubscribeTimer = "resubscribe";
    private readonly IActorRef coordinator;
    private readonly string sweepId;
    private readonly JournalSettings journal;
    private readonly ProgressView view;
    /// <summary>The sequence number of the creator's read, until the first subscription catches up from it; null after.</summary>
    private long? catchUpFrom;
    private readonly TaskCompletionSource<ISweepMessage> finished;
    private IActorRef? watched;

    private sealed record Resubscribe;

    private sealed record StateRead(SweepState? State, IActorRef From);

    private sealed record EventsRead(IReadOnlyList<ISweepEvent> Events, IActorRef From);

    private sealed record StateUnreadable(Exception Cause);

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

    public ProgressPrinter(IActorRef coordinator, JournalSettings journal, SweepJournal.SweepRead initial, TextWriter output, TaskCompletionSource<ISweepMessage> finished)
    {
        this.coordinator = coordinator;
        this.journal = journal;
        this.finished = finished;
        sweepId = initial.State.SweepId;
        catchUpFrom = initial.SequenceNr;
        view = new ProgressView(initial.State, output, ProgressView.IsTerminal(output));
        Following();
        coordinator.Tell(new SubscribeToSweep());
    }

    /// <summary>Showing events as they come.</summary>
    private void Following()
    {
        Receive<SweepSubscribed>(subscribed =>
        {
            var from = Sender;
            Become(Reading);
            var after = catchUpFrom;
            catchUpFrom = null;
            if (after is { } read && subscribed.SequenceNr >= read)
            {
                // Only what was persisted between the creator's read and the subscription.
                SweepJournal.EventsAsync(journal, sweepId, CancellationToken.None, read, subscribed.SequenceNr)
                    .PipeTo(Self, success: events => new EventsRead(events, from), failure: e => new StateUnreadable(e));
            }
            else
            {
                // Events came live since: the state up to the subscription replaces the view's.
                SweepJournal.ReadAsync(journal, sweepId, CancellationToken.None, subscribed.SequenceNr)
                    .PipeTo(Self, success: state => new StateRead(state, from), failure: e => new StateUnreadable(e));
            }
        });
        Receive<ISweepEvent>(view.Apply);
        Common();
    }

    /// <summary>Reading the state up to the subscription's event: later events wait for it.</summary>
    private void Reading()
    {
        Receive<StateRead>(read =>
        {
            if (read.State is not null) view.Reset(read.State);
            Watch(read.From);
            Stash.UnstashAll();
            Become(Following);
        });
        Receive<EventsRead>(read =>
        {
            view.CatchUp(read.Events);
            Watch(read.From);
            Stash.UnstashAll();
            Become(Following);
        });
        Receive<StateUnreadable>(unreadable =>
        {
            // The view keeps what it had; the events still come.
            view.Note($"could not read the sweep's state from the journal ({unreadable.Cause.GetBaseException().Message}); showing events only");
            Stash.UnstashAll();
            Become(Following);
        });
        Receive<ISweepEvent>(_ => Stash.Stash());
        Receive<SweepFinished>(_ => Stash.Stash());
        Receive<SweepHalted>(_ => Stash.Stash());
        Receive<SweepSubscribed>(_ => Stash.Stash());
        Common();
    }

    private void Common()
    {
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
        // Completed, or halted (no healthy slot; the journal holds the reason).
        Receive<SweepFinished>(Finish);
        Receive<SweepHalted>(Finish);
    }

    private void Finish(ISweepMessage end)
    {
        view.Finish();
        finished.TrySetResult(end);
        Context.Stop(Self);
    }

    /// <summary>Set by Akka.NET.</summary>
    public IStash Stash { get; set; } = null!;

    /// <summary>Set by Akka.NET.</summary>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Gives stderr back (see <see cref="ProgressView"/>), leaving the screen as it is: whoever stopped the printer may have written under the block.</summary>
    protected override void PostStop()
    {
        view.Dispose();
        base.PostStop();
    }

    /// <summary>
    /// The printer's props: it subscribes to <paramref name="coordinator"/> at once and completes
    /// <paramref name="finished"/> with <see cref="SweepFinished"/> or <see cref="SweepHalted"/> when the sweep ends or halts.
    /// </summary>
    /// <param name="initial">The sweep as its creator read it from <paramref name="journal"/> (<see cref="SweepJournal.ReadAtAsync"/>).</param>
    public static Props Props(IActorRef coordinator, JournalSettings journal, SweepJournal.SweepRead initial, TextWriter output, TaskCompletionSource<ISweepMessage> finished) =>
        Akka.Actor.Props.Create(() => new ProgressPrinter(coordinator, journal, initial, output, finished));

    /// <summary>The coordinator that answered the subscription: if it dies, its successor is found through the same address.</summary>
    private void Watch(IActorRef answered)
    {
        Timers.Cancel(ResubscribeTimer);
        if (answered.Equals(watched)) return;
        if (watched is not null) Context.Unwatch(watched);
        watched = answered;
        Context.Watch(answered);
    }
}
