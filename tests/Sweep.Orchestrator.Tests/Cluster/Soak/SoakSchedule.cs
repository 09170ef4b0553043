namespace Sweep.Orchestrator.Tests.Cluster.Soak;

/// <summary>
/// One planned kill -9: at <paramref name="At"/> after the chaos window opened, the node at
/// <paramref name="Position"/> (an index into <see cref="SoakSettings.Nodes"/>); its replacement joins
/// the live node <paramref name="JoinDraw"/> picks (<see cref="SoakSchedule.JoinTarget"/>).
/// </summary>
public sealed record SoakKill(TimeSpan At, int Position, int JoinDraw);

/// <summary>The kill schedule, a function of the settings and the seed alone: the same seed kills the same positions at the same times.</summary>
public static class SoakSchedule
{
    /// <summary>
    /// A kill every <see cref="SoakSettings.KillEvery"/> up to and including the end of
    /// <see cref="SoakSettings.Duration"/>, each of a position drawn uniformly from the seed
    /// (<see cref="Random"/>'s seeded sequence, which .NET keeps stable across versions).
    /// </summary>
    public static IReadOnlyList<SoakKill> Create(SoakSettings settings)
    {
        var random = new Random(settings.Seed);
        var kills = new List<SoakKill>();
        for (int k = 1; settings.KillEvery * k <= settings.Duration; k++)
            kills.Add(new SoakKill(settings.KillEvery * k, random.Next(settings.Nodes.Count), random.Next(int.MaxValue)));
        return kills;
    }

    /// <summary>
    /// The node a replacement for <paramref name="kill"/> joins, among <paramref name="live"/> (the
    /// positions whose node is up, each with when it was started): the oldest, or one drawn by the
    /// kill's <see cref="SoakKill.JoinDraw"/> from the live positions in order; null when none is live.
    /// </summary>
    public static int? JoinTarget(SoakKill kill, SoakJoinRule rule, IReadOnlyList<(int Position, DateTimeOffset StartedAt)> live)
    {
        var candidates = live.Where(l => l.Position != kill.Position).OrderBy(l => l.Position).ToList();
        if (candidates.Count == 0) return null;
        return rule == SoakJoinRule.Oldest
            ? candidates.OrderBy(l => l.StartedAt).First().Position
            : candidates[kill.JoinDraw % candidates.Count].Position;
    }
}
