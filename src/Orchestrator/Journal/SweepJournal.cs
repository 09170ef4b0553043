using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Protocol.Events;

namespace Sweep.Orchestrator.Journal;

/// <summary>Reads sweeps from the journal without changing it: for status, and for whatever looks at a sweep from outside.</summary>
public static class SweepJournal
{
    /// <summary>
    /// How long a read may take: the busy retry (a locked or briefly unreachable journal is waited
    /// out that long by the driver) and a minute for the replay itself.
    /// </summary>
    private static TimeSpan ReadTimeout => JournalTimings.Current.BusyRetry + TimeSpan.FromMinutes(1);

    /// <summary>
    /// The sweep's current state (from its latest snapshot and the events after it), or null when the journal has no such sweep.
    /// </summary>
    /// <exception cref="JournalUnavailableException">The journal could not be read (locked past the busy retry, unreachable, damaged): one line saying why and what to do.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> fired (Ctrl+C, SIGTERM).</exception>
    /// <param name="toSequenceNr">Read the state as it was after this event (a subscriber's <c>SweepSubscribed.SequenceNr</c>); default: all of it.</param>
    public static async Task<SweepState?> ReadAsync(ActorSystem system, string sweepId, CancellationToken cancellation = default, long toSequenceNr = long.MaxValue)
    {
        var answer = new TaskCompletionSource<SweepState?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reader = system.ActorOf(Akka.Actor.Props.Create(() => new StateReader(sweepId, answer, toSequenceNr)));
        try
        {
            return await answer.Task.WaitAsync(ReadTimeout, cancellation);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
        {
            throw Unreadable(system, e);
        }
        finally
        {
            system.Stop(reader);
        }
    }

    /// <summary>The ids of every sweep in the journal, in the order they were first written.</summary>
    /// <exception cref="JournalUnavailableException">The journal could not be read.</exception>
    public static async Task<IReadOnlyList<string>> ListAsync(ActorSystem system, CancellationToken cancellation = default)
    {
        var journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
        return await Guard(system, journal.CurrentPersistenceIds()
            .Where(id => id.StartsWith(SweepCoordinator.PersistenceIdFor(""), StringComparison.Ordinal))
            .Select(id => id[SweepCoordinator.PersistenceIdFor("").Length..]), cancellation);
    }

    /// <summary>Every event of a sweep, in the order it was persisted.</summary>
    /// <exception cref="JournalUnavailableException">The journal could not be read.</exception>
    public static async Task<IReadOnlyList<ISweepEvent>> EventsAsync(ActorSystem system, string sweepId, CancellationToken cancellation = default)
    {
        var journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
        return await Guard(system, journal.CurrentEventsByPersistenceId(SweepCoordinator.PersistenceIdFor(sweepId), 0, long.MaxValue)
            .Select(envelope => (ISweepEvent)envelope.Event), cancellation);
    }

    /// <summary>Runs a finite query to a list, within the read timeout, cancellable; a failure is one line about the journal.</summary>
    private static async Task<IReadOnlyList<T>> Guard<T>(ActorSystem system, Source<T, Akka.NotUsed> query, CancellationToken cancellation)
    {
        var (kill, done) = query
            .ViaMaterialized(KillSwitches.Single<T>(), Keep.Right)
            .ToMaterialized(Sink.Seq<T>(), Keep.Both)
            .Run(system.Materializer());
        try
        {
            return await done.WaitAsync(ReadTimeout, cancellation);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
        {
            kill.Abort(e);
            throw Unreadable(system, e);
        }
        catch
        {
            kill.Shutdown();
            throw;
        }
    }

    /// <summary>A read that failed, in one line: the journal (from the system's services), the cause, and what to do.</summary>
    private static JournalUnavailableException Unreadable(ActorSystem system, Exception error)
    {
        var journal = Akka.DependencyInjection.DependencyResolver.For(system).Resolver.GetService<JournalSettings>();
        var where = journal is null ? "the journal" : $"journal {journal.Description}";
        var fault = error is TimeoutException or AskTimeoutException
            ? new JournalFault($"reading it took longer than {ReadTimeout.TotalSeconds:0} s", "check that the journal's disk or server answers")
            : JournalFaults.Describe(error);
        return new JournalUnavailableException($"{where}: {fault.Cause}; nothing was changed, {fault.Advice} and try again");
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
    /// but never persists: it completes <c>answer</c> once (the state, null for no such sweep, or
    /// the replay's failure) and stops.
    /// </summary>
    private sealed class StateReader : ReceivePersistentActor
    {
        private readonly TaskCompletionSource<SweepState?> answer;
        private SweepState? state;

        public StateReader(string sweepId, TaskCompletionSource<SweepState?> answer, long toSequenceNr)
        {
            this.answer = answer;
            Recovery = new Recovery(new SnapshotSelectionCriteria(toSequenceNr), toSequenceNr);
            PersistenceId = SweepCoordinator.PersistenceIdFor(sweepId);
            Recover<SnapshotOffer>(offer => state = SweepState.FromSnapshot((SweepSnapshot)offer.Snapshot));
            Recover<SweepStarted>(started => state = SweepState.Start(started));
            Recover<ISweepEvent>(e => state!.Apply(e));
            Recover<RecoveryCompleted>(_ =>
            {
                answer.TrySetResult(state);
                Context.Stop(Self);
            });
        }

        public override string PersistenceId { get; }

        /// <summary>The latest snapshot at or before the sequence number read to, then the events up to it.</summary>
        public override Recovery Recovery { get; }

        /// <summary>
        /// The journal could not be replayed: the reader's caller hears why (and turns it into one
        /// line), instead of Akka's stack trace on the console. Akka stops the actor after this.
        /// </summary>
        protected override void OnRecoveryFailure(Exception reason, object? message = null) => answer.TrySetException(reason);
    }
}
