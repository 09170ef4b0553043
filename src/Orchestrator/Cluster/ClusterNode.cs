using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.Singleton;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol;
using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Cluster;

/// <summary>The cluster parts of a node: the singleton director (on coordinator-capable nodes) and the proxy every node talks to it through.</summary>
public static class ClusterNode
{
    /// <summary>How long trials that were running when the coordinator's node died wait for their workers to claim them (then they are re-queued).</summary>
    public static readonly TimeSpan OrphanGrace = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Starts the singleton manager here when this node may coordinate, and the proxy; returns the
    /// proxy. A coordinator started here keeps its sweep's claim in the journal as
    /// <paramref name="owner"/> (default: this process); it takes the claim over from a node that
    /// has left this cluster without waiting for the claim to lapse.
    /// </summary>
    public static IActorRef StartDirector(ActorSystem system, JournalSettings journal, bool coordinatorCapable, TextWriter output, OwnerIdentity? owner = null)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        cluster.RegisterOnMemberUp(() =>
        {
            output.WriteLine($"cluster node {cluster.SelfAddress} is up");
            output.Flush();
        });
        system.ActorOf(ClusterNews.Props(system), "cluster-news");
        if (coordinatorCapable)
        {
            WarmUpJournal(system);
            var departed = new ConcurrentDictionary<string, bool>();
            system.ActorOf(Props.Create(() => new DepartureWatch(departed)), "departures");
            owner ??= OwnerIdentity.ThisProcess(cluster.SelfAddress.ToString());
            var leases = SweepOwnership.LeaseFor(journal, owner, OwnershipSettings.Current, address => departed.ContainsKey(address));
            var settings = new CoordinatorSettings(journal.CheckpointDirectory, OrphanGrace: OrphanGrace, LeaseFor: leases);
            system.ActorOf(
                ClusterSingletonManager.Props(SweepDirector.Props(settings), PoisonPill.Instance, ClusterSingletonManagerSettings.Create(system)),
                "director");
        }
        return system.ActorOf(ClusterSingletonProxy.Props("/user/director", ClusterSingletonProxySettings.Create(system)), "director-proxy");
    }

    /// <summary>
    /// Makes <paramref name="sweepId"/> the cluster's sweep; returns the proxy that reaches its
    /// coordinator. <paramref name="owner"/>: the claim this process made (null for a node that joins: it claims nothing).
    /// </summary>
    public static async Task<IActorRef> OpenSweepAsync(ActorSystem system, JournalSettings journal, string sweepId, TimeSpan timeout, TextWriter output, OwnerIdentity? owner)
    {
        var proxy = StartDirector(system, journal, coordinatorCapable: true, output, owner);
        var answer = await proxy.Ask<ISweepMessage>(new OpenSweep(sweepId), timeout);
        if (answer is SweepRefused refused) throw new InvalidInputException(refused.Reason);
        return proxy;
    }

    /// <summary>
    /// Starts the journal plugin and its first connection now rather than when this node takes the
    /// coordinator over: a node that never touched the journal spent about 1.8 s of a hand-over on it
    /// (the plugin starts lazily). Asks the journal to replay none of the director's events (it reads their highest sequence number); the answer, or
    /// a failure (reported when the coordinator itself reads), is not needed.
    /// </summary>
    private static void WarmUpJournal(ActorSystem system)
    {
        var journal = Akka.Persistence.Persistence.Instance.Apply(system).JournalFor(null);
        _ = journal.Ask<object>(reply => new Akka.Persistence.ReplayMessages(0, 0, 0, SweepDirector.PersistenceIdValue, reply), TimeSpan.FromMinutes(1), CancellationToken.None)
            .ContinueWith(task => task.Exception, TaskContinuationOptions.OnlyOnFaulted);
    }

    /// <summary>The cluster address of a node that starts a cluster or joins one, as the journal's ownership claims record it.</summary>
    public static string AddressOf(ClusterOptions options) => $"akka.tcp://{ClusterOptions.SystemName}@{options.Hostname}:{options.Port}";

    /// <summary>Remembers every node this one has seen leave the cluster (removed, or downed), by address.</summary>
    private sealed class DepartureWatch : ReceiveActor
    {
        public DepartureWatch(ConcurrentDictionary<string, bool> departed)
        {
            Receive<ClusterEvent.MemberRemoved>(removed => departed[removed.Member.Address.ToString()] = true);
            Receive<ClusterEvent.MemberStatusChange>(change =>
            {
                if (change.Member.Status is MemberStatus.Down or MemberStatus.Exiting) departed[change.Member.Address.ToString()] = true;
            });
            Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
        }

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent));

        protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
    }
}
