using System.Text.RegularExpressions;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Running;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests.Cluster.Soak;

/// <summary>
/// A kill -9 the soak made: when, of which position and node (cluster address host:port, process
/// id), and whether the journal's <c>sweep_owner</c> row named that process as the coordinator's host
/// just before.
/// </summary>
public sealed record SoakKillRecord(DateTimeOffset At, int Position, SoakNodeKind Kind, string Node, int Pid, bool HostedCoordinator);

/// <summary>The worker slots of one node from when it was up to when it was killed or exited (<paramref name="To"/> null: still alive).</summary>
public sealed record SlotSpan(DateTimeOffset From, DateTimeOffset? To, int Slots);

/// <summary>What one node printed on its console (stdout and stderr, each line with its time), and when the soak killed it, if it did.</summary>
public sealed record NodeConsole(string Node, SoakNodeKind Kind, DateTimeOffset? KilledAt, IReadOnlyList<SweepProcess.OutputLine> Lines);

/// <summary>
/// An attempt that trained to its end, as its worker slot logged it (TrialWorker: "Trial NAME attempt
/// N ended on WORKER: Completed at iteration I"): <paramref name="Outcome"/> is Completed or Diverged;
/// <paramref name="Node"/> is the worker's node, host:port (its worker id is "sweep@HOST:PORT/cpu-N").
/// </summary>
public sealed partial record AttemptEnd(string TrialName, int Attempt, string Outcome, string Node, DateTimeOffset At)
{
    /// <summary>The attempt end a worker's log line records, or null for any other line (or an attempt that was stopped or failed).</summary>
    public static AttemptEnd? Parse(SweepLogs.LogLine line)
    {
        if (line.Trial is null) return null;
        var match = Ended().Match(line.Message);
        if (!match.Success || match.Groups["outcome"].Value is not ("Completed" or "Diverged")) return null;
        return new AttemptEnd(line.Trial, int.Parse(match.Groups["attempt"].Value, System.Globalization.CultureInfo.InvariantCulture), match.Groups["outcome"].Value, match.Groups["node"].Value, line.At);
    }

    [GeneratedRegex(@"^Trial .+ attempt (?<attempt>\d+) ended on (\S+@)?(?<node>[^\s/]+)/\S+: (?<outcome>\w+) at iteration \d+")]
    private static partial Regex Ended();
}

/// <summary>A kill of the coordinator's host, and how long until the next trial started (null: none started after it).</summary>
public sealed record HandOver(SoakKillRecord Kill, TimeSpan? NextTrialStartedAfter);

/// <summary>A stretch with no event recorded while the sweep was unfinished: no working coordinator.</summary>
public sealed record Silence(DateTimeOffset From, DateTimeOffset To)
{
    /// <summary>How long it lasted.</summary>
    public TimeSpan Length => To - From;
}

/// <summary>A node that said it was downed or removed (or downed itself) while the soak had not killed it.</summary>
public sealed record SelfDowning(string Node, SoakNodeKind Kind, DateTimeOffset At, string Line);

/// <summary>Min, median and max of some durations (null when there are none).</summary>
public sealed record Spread(TimeSpan Min, TimeSpan Median, TimeSpan Max, int Count)
{
    /// <summary>The spread of <paramref name="values"/>; the median of an even count is the mean of the middle two.</summary>
    public static Spread? Of(IEnumerable<TimeSpan> values)
    {
        var sorted = values.Order().ToList();
        if (sorted.Count == 0) return null;
        int middle = sorted.Count / 2;
        var median = sorted.Count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
        return new Spread(sorted[0], median, sorted[^1], sorted.Count);
    }
}

/// <summary>Everything the soak measured.</summary>
/// <param name="Trials">Trials in the spec.</param>
/// <param name="FinishedAt">When the journal recorded the sweep completed; null if it did not.</param>
/// <param name="Lost">Names of trials in the spec with no terminal event (completed, diverged, failed for good).</param>
/// <param name="RecordedTwice">Names of trials with more than one terminal event.</param>
/// <param name="TrainedTwice">Names of trials more than one of whose attempts trained to its end (worker logs and journal together).</param>
/// <param name="TrainedTwiceAsNodeDied">Those of <paramref name="TrainedTwice"/> with an attempt that ended on a node killed within <see cref="SoakAnalysis.DiedWithNode"/> after: its result died with the node (kill -9 in the moment between the end and its report), which no protocol can save.</param>
/// <param name="Failed">Names of trials that failed for good.</param>
/// <param name="Attempts">How many trials (value) had how many attempts that started (key).</param>
/// <param name="HandOvers">Every kill of the coordinator's host, with its hand-over time.</param>
/// <param name="Makespan">From the sweep's start to its end.</param>
/// <param name="IdealMakespan">The makespan had every slot alive trained without a pause: the trials' work (iterations × iteration time) over the slots alive, integrated from the start.</param>
/// <param name="Silences">Stretches over 60 s without any event recorded while the sweep was unfinished.</param>
/// <param name="SelfDownings">Nodes that said they were downed or removed (or downed themselves) without being killed.</param>
public sealed record SoakResult(
    int Trials,
    DateTimeOffset? FinishedAt,
    IReadOnlyList<string> Lost,
    IReadOnlyList<string> RecordedTwice,
    IReadOnlyList<string> TrainedTwice,
    IReadOnlyList<string> TrainedTwiceAsNodeDied,
    IReadOnlyList<string> Failed,
    IReadOnlyDictionary<int, int> Attempts,
    IReadOnlyList<HandOver> HandOvers,
    TimeSpan? Makespan,
    TimeSpan? IdealMakespan,
    IReadOnlyList<Silence> Silences,
    IReadOnlyList<SelfDowning> SelfDownings)
{
    /// <summary>Hand-over times of the kills after which a trial started.</summary>
    public Spread? HandOverSpread => Spread.Of(HandOvers.Where(h => h.NextTrialStartedAfter is not null).Select(h => h.NextTrialStartedAfter!.Value));

    /// <summary>Makespan over the ideal, when both are known.</summary>
    public double? MakespanRatio => Makespan is { } m && IdealMakespan is { TotalSeconds: > 0 } i ? m / i : null;

    /// <summary>Trials trained twice, as a share of the spec's trials.</summary>
    public double TrainedTwiceShare => Trials == 0 ? 0 : (double)TrainedTwice.Count / Trials;
}

/// <summary>The soak's measurements, computed from the journal's events, the workers' log lines and the nodes' consoles: pure functions, tested without processes.</summary>
public static class SoakAnalysis
{
    /// <summary>An attempt that ended on a node killed at most this long after died with it, result and all.</summary>
    public static readonly TimeSpan DiedWithNode = TimeSpan.FromSeconds(2);

    /// <summary>Longer than this without any event recorded while the sweep runs counts as having no coordinator.</summary>
    public static readonly TimeSpan SilenceThreshold = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Console lines by which a node says it was downed: the `sweep` commands' own line when their
    /// actor system ends under them, and Akka's split-brain resolver downing its own side (a decision
    /// that includes the node that takes it, or "down all" on instability).
    /// </summary>
    private static readonly string[] DownedLines =
    [
        "this node was removed from the cluster",
        "including myself",
        "SBR detected instability and will down all nodes",
    ];

    /// <summary>
    /// Measures a soak. <paramref name="events"/>: the sweep's events in the journal's order (the
    /// first is <see cref="SweepStarted"/>); <paramref name="ends"/>: attempt ends the workers logged;
    /// <paramref name="now"/>: when the soak stopped looking (the end of a sweep that did not finish).
    /// </summary>
    public static SoakResult Analyse(
        IReadOnlyList<ISweepEvent> events,
        IEnumerable<AttemptEnd> ends,
        IReadOnlyList<SoakKillRecord> kills,
        IReadOnlyList<SlotSpan> slots,
        IEnumerable<NodeConsole> consoles,
        DateTimeOffset now)
    {
        var started = events.OfType<SweepStarted>().Single();
        var definition = started.Definition;
        var state = SweepState.Start(started);
        foreach (var e in events.Skip(1)) state.Apply(e);
        var finishedAt = events.OfType<SweepCompleted>().Select(e => (DateTimeOffset?)e.At).FirstOrDefault();
        var terminal = TerminalEvents(events);
        var ended = terminal.ToHashSet(StringComparer.Ordinal);
        var endList = ends.ToList();
        var trainedTwice = Names(definition, TrainedTwice(definition, events, endList));

        var work = TimeSpan.FromMilliseconds(definition.Synthetic.IterationMs * state.Trials.Sum(t => t.State switch
        {
            TrialState.Completed => t.Definition.Spec.MaxIter,
            TrialState.Diverged => t.DivergedAtIteration ?? t.Iteration,
            _ => 0,
        }));
        return new SoakResult(
            definition.Trials.Count,
            finishedAt,
            Names(definition, definition.Trials.Select(t => t.Id).Where(id => !ended.Contains(id))),
            Names(definition, terminal.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key)),
            trainedTwice,
            trainedTwice.Intersect(EndedAsTheirNodeDied(endList, kills)).ToList(),
            Names(definition, events.OfType<TrialFailed>().Where(e => e.Final).Select(e => e.TrialId)),
            AttemptsDistribution(state.Trials.Select(t => t.Attempts)),
            HandOvers(kills, events.OfType<TrialStarted>().Select(e => e.At)),
            finishedAt - started.At,
            IdealMakespan(work, slots, started.At),
            Silences(events.Select(e => e.At), started.At, finishedAt ?? now, SilenceThreshold),
            SelfDownings(consoles));
    }

    /// <summary>The trial ids of every terminal event (completed, diverged, failed for good), one entry per event.</summary>
    public static List<string> TerminalEvents(IEnumerable<ISweepEvent> events) =>
        events.Where(e => e is TrialCompleted or TrialDiverged or TrialFailed { Final: true }).Select(e => ((ITrialEvent)e).TrialId).ToList();

    /// <summary>
    /// The ids of trials more than one of whose attempts trained to its end: attempts a worker logged
    /// as completed or diverged, and attempts the journal recorded so (a log line a kill -9 cut off
    /// before it was flushed is not needed when the end reached the journal).
    /// </summary>
    public static IEnumerable<string> TrainedTwice(SweepDefinition definition, IEnumerable<ISweepEvent> events, IEnumerable<AttemptEnd> ends)
    {
        var idByName = definition.Trials.ToDictionary(t => t.Name, t => t.Id, StringComparer.Ordinal);
        var attempts = new Dictionary<string, HashSet<int>>();
        void Add(string id, int attempt)
        {
            if (!attempts.TryGetValue(id, out var set)) attempts[id] = set = [];
            set.Add(attempt);
        }
        foreach (var end in ends)
        {
            if (idByName.TryGetValue(end.TrialName, out var id)) Add(id, end.Attempt);
        }
        foreach (var e in events)
        {
            if (e is TrialCompleted completed) Add(completed.TrialId, completed.Attempt);
            if (e is TrialDiverged diverged) Add(diverged.TrialId, diverged.Attempt);
        }
        return attempts.Where(a => a.Value.Count > 1).Select(a => a.Key);
    }

    /// <summary>The names of trials with an attempt that ended on a node the soak killed at most <see cref="DiedWithNode"/> after.</summary>
    public static IEnumerable<string> EndedAsTheirNodeDied(IEnumerable<AttemptEnd> ends, IEnumerable<SoakKillRecord> kills)
    {
        var killedAt = kills.ToLookup(k => k.Node, k => k.At);
        return ends.Where(e => killedAt[e.Node].Any(at => at >= e.At && at - e.At <= DiedWithNode)).Select(e => e.TrialName).Distinct();
    }

    /// <summary>How many trials had each number of attempts, by number of attempts.</summary>
    public static IReadOnlyDictionary<int, int> AttemptsDistribution(IEnumerable<int> attempts) =>
        new SortedDictionary<int, int>(attempts.GroupBy(a => a).ToDictionary(g => g.Key, g => g.Count()));

    /// <summary>For every kill of the coordinator's host, how long until the next trial started (null when none started after it).</summary>
    public static IReadOnlyList<HandOver> HandOvers(IEnumerable<SoakKillRecord> kills, IEnumerable<DateTimeOffset> trialsStarted)
    {
        var starts = trialsStarted.Order().ToList();
        return kills.Where(k => k.HostedCoordinator).OrderBy(k => k.At)
            .Select(k =>
            {
                int next = starts.FindIndex(s => s > k.At);
                return new HandOver(k, next < 0 ? null : starts[next] - k.At);
            })
            .ToList();
    }

    /// <summary>
    /// How long the trials' <paramref name="work"/> would take on the slots alive from
    /// <paramref name="from"/> on (the slots of <paramref name="spans"/> summed over time, the ones
    /// still alive at the end carrying on); null when the slots never suffice.
    /// </summary>
    public static TimeSpan? IdealMakespan(TimeSpan work, IReadOnlyList<SlotSpan> spans, DateTimeOffset from)
    {
        var remaining = work.TotalSeconds;
        if (remaining <= 0) return TimeSpan.Zero;
        var breakpoints = spans.SelectMany(s => s.To is { } to ? new[] { s.From, to } : [s.From])
            .Where(t => t > from).Append(from).Distinct().Order().ToList();
        int SlotsAt(DateTimeOffset t) => spans.Where(s => s.From <= t && (s.To is null || s.To > t)).Sum(s => s.Slots);
        for (int i = 0; i < breakpoints.Count; i++)
        {
            int slots = SlotsAt(breakpoints[i]);
            double length = i + 1 < breakpoints.Count ? (breakpoints[i + 1] - breakpoints[i]).TotalSeconds : double.PositiveInfinity;
            if (slots > 0 && slots * length >= remaining) return breakpoints[i] + TimeSpan.FromSeconds(remaining / slots) - from;
            if (slots > 0) remaining -= slots * length;
        }
        return null;
    }

    /// <summary>The stretches of more than <paramref name="longerThan"/> between <paramref name="from"/>, the events at <paramref name="times"/> and <paramref name="to"/>.</summary>
    public static IReadOnlyList<Silence> Silences(IEnumerable<DateTimeOffset> times, DateTimeOffset from, DateTimeOffset to, TimeSpan longerThan)
    {
        var marks = times.Where(t => t > from && t < to).Append(from).Append(to).Order().ToList();
        return marks.Zip(marks.Skip(1), (start, end) => new Silence(start, end)).Where(s => s.Length > longerThan).ToList();
    }

    /// <summary>
    /// The nodes that said they were downed (<see cref="DownedLines"/>) before the soak killed them,
    /// each once, at its first such line.
    /// </summary>
    public static IReadOnlyList<SelfDowning> SelfDownings(IEnumerable<NodeConsole> consoles) =>
        consoles.SelectMany(c => c.Lines
                .Where(l => (c.KilledAt is null || l.At < c.KilledAt) && DownedLines.Any(d => l.Text.Contains(d, StringComparison.Ordinal)))
                .Take(1)
                .Select(l => new SelfDowning(c.Node, c.Kind, l.At, l.Text.Trim())))
            .OrderBy(d => d.At)
            .ToList();

    private static IReadOnlyList<string> Names(SweepDefinition definition, IEnumerable<string> ids)
    {
        var nameById = definition.Trials.ToDictionary(t => t.Id, t => t.Name, StringComparer.Ordinal);
        return ids.Distinct().Select(id => nameById.GetValueOrDefault(id, id)).Order(StringComparer.Ordinal).ToList();
    }
}
