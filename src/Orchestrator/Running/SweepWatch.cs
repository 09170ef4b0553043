using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol;
using Sweep.Protocol.Events;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Running;

/// <summary>
/// `sweep watch`: shows a sweep's progress from another terminal or machine by following its
/// events in the journal (<see cref="SweepJournal.FollowAsync"/>), and returns when the sweep ends, is interrupted,
/// or turns out to have no owner any more (its process was killed): exit code 0 when it completed
/// without failures, 1 otherwise, 130 on Ctrl+C.
/// </summary>
public static class SweepWatch
{
    /// <summary>How often watch checks that the sweep it follows still has a live owner.</summary>
    private static readonly TimeSpan OwnerCheckEvery = TimeSpan.FromSeconds(2);

    public static async Task<int> RunAsync(JournalSettings journal, string sweepId, TextWriter output, CancellationToken interrupt)
    {
        // One read of the state as it stands (snapshot and events), then only the events after it.
        var read = await SweepJournal.ReadAtAsync(journal, sweepId, interrupt)
            ?? throw new InvalidInputException($"no sweep '{sweepId}' in {journal.Description}");
        var current = read.State;
        if (await SweepLiveness.ReadAsync(journal, sweepId, current.Phase == SweepPhase.Running) is { OwnerGone: true } goneAlready)
        {
            // Nothing will ever be written to it again: show where it stands, and how to go on.
            output.WriteLine(StatusView.Table(current, goneAlready));
            output.WriteLine($"sweep {sweepId}: {goneAlready.Summary}");
            return 1;
        }

        var view = new ProgressView(current, output, ProgressView.IsTerminal(output));
        output.WriteLine($"watching sweep {sweepId} ({SafeText.Line(current.Definition.Name)}) in {journal.Description}: {current.FinishedCount}/{current.Trials.Count} finished, {current.Phase.ToString().ToLowerInvariant()}");
        output.Flush();
        SweepLiveness? orphaned = null;
        using var following = CancellationTokenSource.CreateLinkedTokenSource(interrupt);
        // A sweep whose process was killed never writes another event: watch asks the journal who owns it.
        var ownerCheck = Task.Run(async () =>
        {
            while (!following.IsCancellationRequested)
            {
                await Task.Delay(OwnerCheckEvery, following.Token);
                if (await SweepLiveness.ReadAsync(journal, sweepId, view.State.Phase == SweepPhase.Running) is { OwnerGone: true } gone)
                {
                    orphaned = gone;
                    await following.CancelAsync();
                }
            }
        }, following.Token);
        if (current.Phase is not (SweepPhase.Completed or SweepPhase.Interrupted))
        {
            await SweepJournal.FollowAsync(journal, sweepId, e =>
            {
                view.Apply(e);
                return e is not (SweepCompleted or SweepInterrupted);
            }, following.Token, afterSequenceNr: read.SequenceNr);
        }

        await following.CancelAsync();
        try
        {
            await ownerCheck;
        }
        catch (OperationCanceledException)
        {
        }
        view.Finish();
        output.WriteLine();
        output.WriteLine(StatusView.Table(view.State, orphaned));
        if (interrupt.IsCancellationRequested) return 130;
        if (orphaned is not null)
        {
            output.WriteLine($"sweep {sweepId}: {orphaned.Summary}");
            return 1;
        }
        if (view.State.Phase == SweepPhase.Interrupted)
        {
            output.WriteLine($"sweep {sweepId} is interrupted{(view.State.InterruptReason is { } reason ? $" ({reason})" : "")}; continue with: sweep resume {sweepId} {journal.CommandLine}");
            return 1;
        }
        return view.State.HasFailures ? 1 : 0;
    }
}
