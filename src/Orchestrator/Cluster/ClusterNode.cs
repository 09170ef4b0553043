using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Protocol;
using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Cluster;

/// <summary>The cluster parts of a node: the singleton director (on coordinator-capable nodes) and the proxy every node talks to it through.</summary>
public static class ClusterNode
{
    /// <summary>Starts the singleton manager here when this node may coordinate, and the proxy; returns the proxy.</summary>
    public static IActorRef StartDirector(ActorSystem system, JournalSettings journal, bool coordinatorCapable, TextWriter output)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        cluster.RegisterOnMemberUp(() =>
        {
            output.WriteLine($"cluster node {cluster.SelfAddress} is up");
            output.Flush();
        });
        if (coordinatorCapable)
        {
            var settings = new CoordinatorSettings(journal.CheckpointDirectory, OrphanGrace: Running.SweepRun.ClusterOrphanGrace);
            system.ActorOf(
                ClusterSingletonManager.Props(SweepDirector.Props(settings), PoisonPill.Instance, ClusterSingletonManagerSettings.Create(system)),
                "director");
        }
        return system.ActorOf(ClusterSingletonProxy.Props("/user/director", ClusterSingletonProxySettings.Create(system)), "director-proxy");
    }

    /// <summary>Makes <paramref name="sweepId"/> the cluster's sweep; returns the proxy that reaches its coordinator.</summary>
    public static async Task<IActorRef> OpenSweepAsync(ActorSystem system, JournalSettings journal, string sweepId, TimeSpan timeout, TextWriter output)
    {
        var proxy = StartDirector(system, journal, coordinatorCapable: true, output);
        var answer = await proxy.Ask<ISweepMessage>(new OpenSweep(sweepId), timeout);
        if (answer is SweepRefused refused) throw new InvalidInputException(refused.Reason);
        return proxy;
    }
}
