using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Sweep.Orchestrator.Coordination;
using Sweep.Protocol.Events;

namespace Sweep.Orchestrator.Journal;

/// <summary>Reads sweeps from the journal without changing it: for status, and for whatever looks at a sweep from outside.</summary>
public static class SweepJournal
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromMinutes(2);

    /// <summary>The sweep's current state (from its latest snapshot and the events after it), or null when the journal has no such sweep.</summary>
    public static async Task<SweepState?> ReadAsync(ActorSystem system, string sweepId)
    {
        var reader = system.ActorOf(Akka.Actor.Props.Create(() => new StateReader(sweepId)));
        var answer = await reader.Ask<object>(StateReader.Read.Instance, ReadTimeout);
        return answer as SweepState;
    }

    /// <summary>The ids of every sweep in the journal, in the order they were first written.</summary>
    public static async Task<IReadOnlyList<string>> ListAsync(ActorSystem system)
    {
        var journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
        var ids = await journal.CurrentPersistenceIds()
            .Where(id => id.StartsWith(SweepCoordinator.PersistenceIdFor(""), StringComparison.Ordinal))
            .Select(id => id[SweepCoordinator.PersistenceIdFor("").Length..])
            .RunWith(Sink.Seq<string>(), system.Materializer());
        return ids;
    }

    /// <summary>Every event of a sweep, in the order it was persisted.</summary>
    public static async Task<IReadOnlyList<ISweepEvent>> EventsAsync(ActorSystem system, string sweepId)
    {
        var journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
        return await journal.CurrentEventsByPersistenceId(SweepCoordinator.PersistenceIdFor(sweepId), 0, long.MaxValue)
            .Select(envelope => (ISweepEvent)envelope.Event)
            .RunWith(Sink.Seq<ISweepEvent>(), system.Materializer());
    }

    /// <summary>
    /// Follows a sweep as it is persisted, from any process that reaches the journal: replays what
    /// is there, then hands each new event to <paramref name="onEvent"/> as the read journal polls it
    /// (akka.persistence.query.journal.sql.refresh-interval), until <paramref name="onEvent"/> returns false.
    /// </summary>
    public static async Task FollowAsync(ActorSystem system, string sweepId, Func<ISweepEvent, bool> onEvent, CancellationToken cancellation)
    {
        var journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
        var (kill, done) = journal.EventsByPersistenceId(SweepCoordinator.PersistenceIdFor(sweepId), 0, long.MaxValue)
            .Select(envelope => (ISweepEvent)envelope.Event)
            .TakeWhile(new Predicate<ISweepEvent>(onEvent))
            .ViaMaterialized(KillSwitches.Single<ISweepEvent>(), Keep.Right)
            .ToMaterialized(Sink.Ignore<ISweepEvent>(), Keep.Both)
            .Run(system.Materializer());
        await using var _ = cancellation.Register(kill.Shutdown);
        await done;
    }

    /// <summary>
    /// Recovers the coordinator's state the way the coordinator itself does (snapshot, then events)
    /// but never persists: it answers once and stops.
    /// </summary>
    private sealed class StateReader : ReceivePersistentActor
    {
        private readonly List<IActorRef> waiting = [];
        private SweepState? state;
        private bool recovered;

        public sealed class Read
        {
            public static readonly Read Instance = new();
        }

        public StateReader(string sweepId)
        {
            PersistenceId = SweepCoordinator.PersistenceIdFor(sweepId);
            Recover<SnapshotOffer>(offer => state = SweepState.FromSnapshot((SweepSnapshot)offer.Snapshot));
            Recover<SweepStarted>(started => state = SweepState.Start(started));
            Recover<ISweepEvent>(e => state!.Apply(e));
            Recover<RecoveryCompleted>(_ =>
            {
                recovered = true;
                Answer();
            });
            Command<Read>(_ =>
            {
                waiting.Add(Sender);
                if (recovered) Answer();
            });
        }

        public override string PersistenceId { get; }

        private void Answer()
        {
            foreach (var asker in waiting) asker.Tell(state is null ? Status.Success.Instance : state);
            if (waiting.Count > 0) Context.Stop(Self);
        }
    }
}
