using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Cluster;

/// <summary>
/// The cluster singleton (role <c>coordinator</c>): it records in the shared journal which sweep the
/// cluster runs and hosts that sweep's <see cref="SweepCoordinator"/> as its child, forwarding
/// every command and worker message to it with the original sender. When the node hosting it dies,
/// the singleton starts on the next coordinator-capable node, reads the active sweep back from the
/// journal, and the coordinator recovers the sweep there; so nodes that join need no sweep id.
/// </summary>
public sealed class SweepDirector : ReceivePersistentActor, IWithTimers
{
    private static readonly TimeSpan RestartDelay = TimeSpan.FromSeconds(5);

    public const string PersistenceIdValue = "sweep-director";

    private readonly CoordinatorSettings settings;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private string? activeSweep;
    private bool activeFinished;
    private IActorRef? coordinator;

    // The coordinator stopped on a journal failure: it is not restarted by itself (the sweep stops
    // cleanly); 'sweep resume' opens it again once the journal is back.
    private bool journalFailed;

    private sealed record RestartCoordinator;

    // Whether the coordinator it started has said if its sweep finished (SweepSubscribed, then
    // SweepFinished when it has): until then an OpenSweep of another sweep waits (stashed), so a
    // director that just moved does not refuse a new sweep because the finished one looks active.
    private bool settled = true;
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(10);

    private sealed record Settled;

    public ITimerScheduler Timers { get; set; } = null!;

    public SweepDirector(CoordinatorSettings settings)
    {
        this.settings = settings;
        Recover<DirectorSweepOpened>(opened => activeSweep = opened.SweepId);
        Recover<RecoveryCompleted>(_ =>
        {
            if (activeSweep is not null) StartCoordinator(activeSweep);
        });

        Command<OpenSweep>(HandleOpen);
        Command<SweepFinished>(finished =>
        {
            if (finished.SweepId == activeSweep) activeFinished = true;
        });
        Command<SweepJournalFailed>(failed =>
        {
            if (failed.SweepId == activeSweep) journalFailed = true;
        });
        // The answer to the director's own subscription; a SweepFinished the coordinator sent with it
        // is in the mailbox already, ahead of this Settled.
        Command<SweepSubscribed>(_ => Self.Tell(new Settled()));
        Command<Settled>(_ =>
        {
            if (settled) return;
            settled = true;
            Timers.Cancel(nameof(Settled));
            Stash.UnstashAll();
        });
        Command<SweepHalted>(_ => { });
        Command<ISweepEvent>(_ => { });
        Command<Terminated>(terminated =>
        {
            if (!terminated.ActorRef.Equals(coordinator)) return;
            // The coordinator stops when the journal fails a write; it recovers from the journal once started again.
            coordinator = null;
            Self.Tell(new Settled());
            if (journalFailed)
            {
                log.Warning("the coordinator of sweep {0} stopped on a journal failure; 'sweep resume {0}' starts it again", activeSweep);
                return;
            }
            log.Warning("the coordinator of sweep {0} stopped; starting it again in {1}", activeSweep, RestartDelay);
            Timers.StartSingleTimer("restart", new RestartCoordinator(), RestartDelay);
        });
        Command<RestartCoordinator>(_ =>
        {
            if (coordinator is null && activeSweep is not null) StartCoordinator(activeSweep);
        });
        Command<ISweepMessage>(Forward);
    }

    public override string PersistenceId => PersistenceIdValue;

    public static Props Props(CoordinatorSettings settings) => Akka.Actor.Props.Create(() => new SweepDirector(settings));

    private void HandleOpen(OpenSweep open)
    {
        if (!settled && open.SweepId != activeSweep)
        {
            Stash.Stash();
            return;
        }
        if (open.SweepId == activeSweep)
        {
            journalFailed = false;
            if (coordinator is null) StartCoordinator(open.SweepId);
            Sender.Tell(new SweepOpened(open.SweepId));
            return;
        }
        if (activeSweep is not null && !activeFinished)
        {
            Sender.Tell(new SweepRefused(open.SweepId, $"this cluster is running sweep '{activeSweep}'; a cluster runs one sweep at a time (wait for it, or resume it)"));
            return;
        }
        var requester = Sender;
        Persist(new DirectorSweepOpened(open.SweepId, DateTimeOffset.UtcNow), opened =>
        {
            if (coordinator is not null)
            {
                Context.Unwatch(coordinator);
                Context.Stop(coordinator);
            }
            activeSweep = opened.SweepId;
            activeFinished = false;
            journalFailed = false;
            StartCoordinator(opened.SweepId);
            requester.Tell(new SweepOpened(opened.SweepId));
        });
    }

    private void StartCoordinator(string sweepId)
    {
        coordinator = Context.ActorOf(SweepCoordinator.Props(sweepId, settings), "sweep-" + sweepId + "-" + Guid.NewGuid().ToString("N")[..8]);
        settled = false;
        // A coordinator with no sweep to recover never answers the subscription: wait no longer than this.
        Timers.StartSingleTimer(nameof(Settled), new Settled(), SettleTimeout);
        Context.Watch(coordinator);
        coordinator.Tell(new SubscribeToSweep());
        log.Info("coordinating sweep {0}", sweepId);
    }

    private void Forward(ISweepMessage message)
    {
        if (coordinator is not null)
        {
            coordinator.Forward(message);
            return;
        }
        // Workers keep registering until a sweep is open (and a leaving one needs no answer); anyone else learns that none is.
        if (message is not (RegisterWorker or WorkerLeaving)) Sender.Tell(new SweepRefused("", "no sweep is open in this cluster"));
    }
}
