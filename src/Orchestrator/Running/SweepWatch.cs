using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol;
using Sweep.Protocol.Events;

namespace Sweep.Orchestrator.Running;

/// <summary>
/// `sweep watch`: shows a sweep's progress from another terminal or machine by following its
/// events in the journal (Akka.Persistence.Query), and returns when the sweep ends.
/// </summary>
public static class SweepWatch
{
    public static async Task<int> RunAsync(JournalSettings journal, string sweepId, TextWriter output, CancellationToken interrupt)
    {
        await using var sweepSystem = await SweepSystem.StartAsync(journal);
        var system = sweepSystem.System;
        if (await SweepJournal.ReadAsync(system, sweepId) is null)
            throw new InvalidInputException($"no sweep '{sweepId}' in {journal.Description}");

        ProgressView? view = null;
        bool live = ProgressView.IsTerminal(output);
        // What is already in the journal only builds the state; what comes after it is shown.
        int known = (await SweepJournal.EventsAsync(system, sweepId)).Count, seen = 0;
        bool ended = false;
        await SweepJournal.FollowAsync(system, sweepId, e =>
        {
            bool replay = ++seen <= known;
            if (view is null) view = new ProgressView(SweepState.Start((SweepStarted)e), output, live);
            else if (replay) view.State.Apply(e);
            else view.Apply(e);

            if (seen == known)
            {
                var state = view.State;
                output.WriteLine($"watching sweep {sweepId} ({state.Definition.Name}) in {journal.Description}: {state.FinishedCount}/{state.Trials.Count} finished, {state.Phase.ToString().ToLowerInvariant()}");
                output.Flush();
                ended = state.Phase == SweepPhase.Completed;
            }
            else if (!replay)
            {
                ended = e is SweepCompleted or SweepInterrupted;
            }
            return !ended;
        }, interrupt);

        if (view is null) throw new InvalidInputException($"no sweep '{sweepId}' in {journal.Description}");
        view.Finish();
        output.WriteLine();
        output.WriteLine(SweepReport.Table(view.State));
        if (interrupt.IsCancellationRequested) return 130;
        return view.State.HasFailures ? 1 : 0;
    }
}
