using Akka.Event;

namespace Sweep.GpuWorker.Logging;

/// <summary>
/// Every log event about a trial carries the same properties (SweepId, TrialId, TrialName, Attempt,
/// Node, Worker), whoever writes it, so one trial's lines can be found across processes and machines
/// (`sweep logs ID --trial NAME`).
/// </summary>
public static class TrialLog
{
    /// <summary>A log for events about a whole sweep (slots, halts): found by `sweep logs ID`.</summary>
    public static ILoggingAdapter ForSweep(this ILoggingAdapter log, string sweepId) => log.WithContext("SweepId", sweepId);

    public static ILoggingAdapter ForTrial(this ILoggingAdapter log, string sweepId, string trialId, string trialName, int attempt, string? node, string? worker) =>
        log.WithContext("SweepId", sweepId)
            .WithContext("TrialId", trialId)
            .WithContext("TrialName", trialName)
            .WithContext("Attempt", attempt)
            .WithContext("Node", node ?? "")
            .WithContext("Worker", worker ?? "");
}
