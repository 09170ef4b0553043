using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Sweep.Orchestrator.Cluster;

/// <summary>
/// What happens to the cluster's members, one line each on every node's console: a node
/// unreachable, reachable again, downed (warnings: a problem, or the end of one); one that joined,
/// left or was removed (information, in the log file). Akka's own remoting and failure-detector
/// lines about the same moments stay in the JSON log file only (<see cref="Hosting.ConsoleLines.IsReplacedAkkaLine"/>):
/// a node lost used to print 8 to 10 of them, and a stack trace.
/// </summary>
public sealed class ClusterNews : ReceiveActor
{
    private readonly ILoggingAdapter log = Context.GetLogger();

    /// <summary>Subscribes to membership and reachability changes; <paramref name="downAfter"/>: the split-brain resolver's stable-after, for the text.</summary>
    public ClusterNews(TimeSpan downAfter)
    {
        Receive<ClusterEvent.IClusterDomainEvent>(change =>
        {
            if (Line(change, downAfter) is not { } news) return;
            if (news.Warning) log.Warning(news.Text);
            else log.Info(news.Text);
        });
        Receive<ClusterEvent.CurrentClusterState>(_ => { }); // how things were when this node started: not news
    }

    /// <summary>Props for a node whose config holds akka.cluster.split-brain-resolver.stable-after.</summary>
    public static Props Props(ActorSystem system) =>
        Akka.Actor.Props.Create(() => new ClusterNews(system.Settings.Config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after", TimeSpan.FromSeconds(20), false)));

    /// <summary>
    /// The console line for a cluster event, or null when it is not news (status changes in between,
    /// the node's own join). Warning: true for a member unreachable, reachable again, or downed.
    /// </summary>
    public static (bool Warning, string Text)? Line(ClusterEvent.IClusterDomainEvent change, TimeSpan downAfter) => change switch
    {
        ClusterEvent.UnreachableMember e => (true, $"cluster: node {Describe(e.Member)} is unreachable; it is downed if it stays so for {downAfter.TotalSeconds:0.#} s"),
        ClusterEvent.ReachableMember e => (true, $"cluster: node {Describe(e.Member)} is reachable again"),
        ClusterEvent.MemberDowned e => (true, $"cluster: node {Describe(e.Member)} was downed; the cluster goes on without it"),
        ClusterEvent.MemberUp e => (false, $"cluster: node {Describe(e.Member)} joined"),
        ClusterEvent.MemberLeft e => (false, $"cluster: node {Describe(e.Member)} is leaving"),
        ClusterEvent.MemberRemoved e => (false, $"cluster: node {Describe(e.Member)} was removed"),
        _ => null,
    };

    private static string Describe(Member member) =>
        $"{member.Address.Host}:{member.Address.Port}" + (member.Roles.Count == 0 ? "" : $" ({string.Join(", ", member.Roles.Order(StringComparer.Ordinal))})");

    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
}
