using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Coordination;

/// <summary>
/// What the coordinator records when an attempt ends: pure decisions over the sweep's definition
/// and the trial's record, tested without actors. Retries are limited by the trial's failures, not
/// its attempts: a run stopped because its worker left, or handed back before it started, never
/// uses up a retry nor makes a trial Failed.
/// </summary>
public static class TrialEndPolicy
{
    /// <summary>
    /// The events that record <paramref name="ended"/>, the end of the running attempt of the trial
    /// <paramref name="record"/>, at <paramref name="now"/>.
    /// </summary>
    /// <param name="definition">The sweep's definition (its retry and out-of-memory policies).</param>
    /// <param name="record">The trial as the sweep's state has it, still running the attempt.</param>
    /// <param name="ended">How the attempt ended, as its worker reported it.</param>
    /// <param name="now">When.</param>
    public static ISweepEvent[] Decide(SweepDefinition definition, TrialRecord record, TrialEnded ended, DateTimeOffset now)
    {
        var reason = ended.Reason ?? ended.Kind.ToString();
        return ended.Kind switch
        {
            TrialEndKind.Completed => [new TrialCompleted(ended.TrialId, ended.Attempt, now)],
            TrialEndKind.Diverged => [new TrialDiverged(ended.TrialId, ended.Attempt, ended.Iteration, reason, now)],
            TrialEndKind.Stopped => [new TrialRequeued(ended.TrialId, $"{ended.Reason ?? "sweep interrupted"} at iteration {ended.Iteration}", null, false, now, now)],
            TrialEndKind.HandedBack => [new TrialHandedBack(ended.TrialId, ended.Attempt, record.WorkerId ?? "", ended.Reason ?? "handed back before it started", now)],
            TrialEndKind.OutOfMemory => OutOfMemory(definition, record, ended, now),
            _ => Failure(definition.Retry, record, ended, reason, now),
        };
    }

    /// <summary>A failed attempt is retried after the back-off until the trial has failed max-attempts times.</summary>
    private static ISweepEvent[] Failure(RetryPolicy retry, TrialRecord record, TrialEnded ended, string error, DateTimeOffset now)
    {
        int failures = record.Failures + 1;
        if (failures >= retry.MaxAttempts)
            return [new TrialFailed(ended.TrialId, ended.Attempt, error, false, true, now)];
        var notBefore = now + retry.DelayBefore(failures + 1);
        return
        [
            new TrialFailed(ended.TrialId, ended.Attempt, error, false, false, now),
            new TrialRequeued(ended.TrialId, $"retry {failures + 1} of {retry.MaxAttempts} after: {error}", null, false, notBefore, now),
        ];
    }

    /// <summary>
    /// halve-batch follows the study's advice under memory pressure: half the batch, and the
    /// learning rate rescaled by the sweep's coupling exponent k (lr × (1/2)^k; k = −1 doubles it).
    /// </summary>
    private static ISweepEvent[] OutOfMemory(SweepDefinition definition, TrialRecord record, TrialEnded ended, DateTimeOffset now)
    {
        var spec = record.Definition.Spec;
        var error = ended.Reason ?? "out of memory";
        if (definition.OnOutOfMemory != OutOfMemoryPolicy.HalveBatch || spec.BatchSize < 2)
            return [new TrialFailed(ended.TrialId, ended.Attempt, error, true, true, now)];
        var halved = spec with
        {
            BatchSize = spec.BatchSize / 2,
            TestBatchSize = Math.Max(1, spec.TestBatchSize / 2),
            BaseLr = spec.BaseLr * Math.Pow(0.5, definition.CouplingExponent),
        };
        return
        [
            new TrialFailed(ended.TrialId, ended.Attempt, error, true, false, now),
            new TrialRequeued(ended.TrialId, $"out of memory at batch {spec.BatchSize}: batch halved to {halved.BatchSize}, base lr {halved.BaseLr:G6}", halved, true, now, now),
        ];
    }
}
