using Sweep.Protocol.Events;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Reporting;

/// <summary>
/// Each trial's learning curve, rebuilt from a sweep's persisted events: the test points of its last
/// attempt, and for an attempt that resumed from a checkpoint (TrialStarted.FromIteration &gt; 0) the
/// points of the attempt before it up to that iteration, as if the trial had never stopped (unless
/// TrialRestartedFromScratch says the attempt found no checkpoint and began at 0 after all).
/// </summary>
public static class TrialCurves
{
    /// <summary>Trial id → its test points in iteration order (one per iteration); trials with no point are absent.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<TrialMetrics>> FromEvents(IEnumerable<ISweepEvent> events)
    {
        var fromIteration = new Dictionary<(string Trial, int Attempt), int>();
        var points = new Dictionary<(string Trial, int Attempt), List<TrialMetrics>>();
        var lastAttempt = new Dictionary<string, int>();
        foreach (var e in events)
        {
            switch (e)
            {
                case TrialStarted started:
                    fromIteration[(started.TrialId, started.Attempt)] = started.FromIteration;
                    Note(started.TrialId, started.Attempt);
                    break;
                case TrialRestartedFromScratch restarted:
                    // The checkpoint was not where the attempt ran: it trained from iteration 0 after all.
                    fromIteration[(restarted.TrialId, restarted.Attempt)] = 0;
                    Note(restarted.TrialId, restarted.Attempt);
                    break;
                case TrialProgress progress:
                    if (!points.TryGetValue((progress.TrialId, progress.Attempt), out var list))
                        points[(progress.TrialId, progress.Attempt)] = list = [];
                    list.Add(progress.Metrics);
                    Note(progress.TrialId, progress.Attempt);
                    break;
            }
        }

        var curves = new Dictionary<string, IReadOnlyList<TrialMetrics>>();
        foreach (var (trial, last) in lastAttempt)
        {
            // Attempt by attempt: a fresh start replaces the curve, a resumed one keeps what came before its checkpoint.
            var curve = new SortedDictionary<int, TrialMetrics>();
            for (int attempt = 1; attempt <= last; attempt++)
            {
                int from = fromIteration.GetValueOrDefault((trial, attempt));
                var own = points.GetValueOrDefault((trial, attempt)) ?? [];
                if (attempt < last && own.Count == 0 && !fromIteration.ContainsKey((trial, attempt))) continue;
                var next = new SortedDictionary<int, TrialMetrics>();
                if (from > 0)
                {
                    foreach (var (iteration, metrics) in curve)
                        if (iteration <= from) next[iteration] = metrics;
                }
                foreach (var metrics in own) next[metrics.Iteration] = metrics;
                curve = next;
            }
            if (curve.Count > 0) curves[trial] = curve.Values.ToList();
        }
        return curves;

        void Note(string trial, int attempt) => lastAttempt[trial] = Math.Max(lastAttempt.GetValueOrDefault(trial), attempt);
    }
}
