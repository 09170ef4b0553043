using Sweep.Protocol.Messages;

namespace Sweep.GpuWorker.Workers;

/// <summary>
/// A worker slot's reports the coordinator has not acknowledged, in the order they were sent: the
/// test points (<see cref="TestPointReported"/>), checkpoints (<see cref="TrialCheckpointSaved"/>),
/// missing checkpoint (<see cref="TrialCheckpointMissing"/>) and end (<see cref="TrialEnded"/>) of
/// its attempts. An acknowledged checkpoint (<see cref="TrialCheckpointRecorded"/>) takes the
/// attempt's reports up to it with it (the coordinator handles one worker's reports in order, so it
/// has all of them); an acknowledged end (<see cref="TrialEndRecorded"/>) takes all of the attempt's.
/// What remains is what a coordinator may not have: the worker sends it again, in order, to every
/// coordinator it registers with (after a hand-over), and an ended attempt's reports every few
/// seconds until the end is acknowledged. Not thread-safe: the worker actor owns it.
/// </summary>
public sealed class ReportOutbox
{
    private readonly List<ISweepMessage> reports = [];

    /// <summary>Every report not acknowledged, in the order sent.</summary>
    public IReadOnlyList<ISweepMessage> Pending => reports;

    /// <summary>Whether an attempt's end waits for its acknowledgement.</summary>
    public bool AwaitsEnd => reports.Any(r => r is TrialEnded);

    /// <summary>The reports of the attempts that ended and whose end waits for its acknowledgement, in the order sent.</summary>
    public IReadOnlyList<ISweepMessage> OfEndedAttempts
    {
        get
        {
            var ended = reports.OfType<TrialEnded>().Select(e => (e.TrialId, e.Attempt)).ToHashSet();
            return reports.Where(r => ended.Contains(AttemptOf(r))).ToList();
        }
    }

    /// <summary>Keeps <paramref name="report"/> until it is acknowledged.</summary>
    /// <exception cref="ArgumentException">Not a report about an attempt.</exception>
    public void Add(ISweepMessage report)
    {
        AttemptOf(report);
        reports.Add(report);
    }

    /// <summary>The journal holds the checkpoint: it and the attempt's reports sent before it are delivered.</summary>
    public void Acknowledge(TrialCheckpointRecorded recorded)
    {
        int last = reports.FindLastIndex(r => r is TrialCheckpointSaved saved
            && (saved.TrialId, saved.Attempt, saved.Iteration) == (recorded.TrialId, recorded.Attempt, recorded.Iteration));
        if (last < 0) return; // acknowledged before (a later checkpoint's acknowledgement took it)
        var attempt = (recorded.TrialId, recorded.Attempt);
        var kept = reports.Where((report, index) => index > last || AttemptOf(report) != attempt).ToList();
        reports.Clear();
        reports.AddRange(kept);
    }

    /// <summary>The journal holds the attempt's end (or a later attempt): nothing of it is needed any more.</summary>
    public void Acknowledge(TrialEndRecorded recorded) => reports.RemoveAll(r => AttemptOf(r) == (recorded.TrialId, recorded.Attempt));

    private static (string TrialId, int Attempt) AttemptOf(ISweepMessage report) => report switch
    {
        TestPointReported p => (p.TrialId, p.Attempt),
        TrialCheckpointSaved c => (c.TrialId, c.Attempt),
        TrialCheckpointMissing m => (m.TrialId, m.Attempt),
        TrialEnded e => (e.TrialId, e.Attempt),
        _ => throw new ArgumentException($"{report.GetType().Name} is not a report about an attempt", nameof(report)),
    };
}
