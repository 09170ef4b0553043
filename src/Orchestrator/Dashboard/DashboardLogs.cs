using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Dashboard;

/// <summary>A sweep's (or one trial's) latest log lines for the page, read as `sweep logs` reads them.</summary>
public static class DashboardLogs
{
    public static IReadOnlyList<SweepLogs.LogLine> Read(string folder, string sweepId, string? trialName, int maxLines)
    {
        var ordered = SweepLogs.Read(folder, [], sweepId, trialName).OrderBy(l => l.At).ToList();
        return ordered.Count <= maxLines ? ordered : ordered[^maxLines..];
    }
}
