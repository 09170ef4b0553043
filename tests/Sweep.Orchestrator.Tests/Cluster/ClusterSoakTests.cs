using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Orchestrator.Running;
using Sweep.Orchestrator.Tests.Cluster.Soak;
using Sweep.Protocol.Events;
using Xunit.Abstractions;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests.Cluster;

/// <summary>
/// Issue 13's chaos soak with real processes on loopback and a real PostgreSQL journal: a `run`
/// node, worker nodes and a standby run a synthetic sweep while every <see cref="SoakSettings.KillEvery"/>
/// a node drawn from the seed is killed with kill -9 and replaced by a node of the same kind joining a
/// live one. Parameters come from SWEEP_SOAK_* (<see cref="SoakSettings.From"/>); the defaults are the
/// 2-minute version CI runs, bench/cluster-soak.sh runs the 10-minute one. The measurements are
/// <see cref="SoakAnalysis"/>'s, the report <see cref="SoakReport"/>'s (test output and
/// artifacts/soak/report.md); this class only starts, kills and watches processes.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class ClusterSoakTests(PostgresServer postgres, ITestOutputHelper testOutput) : IDisposable
{
    private const string SweepId = "soak";
    private static readonly TimeSpan Setup = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(2);

    private readonly string temp = Directory.CreateTempSubdirectory("sweep-soak-").FullName;
    private readonly List<SoakNode> nodes = [];
    private readonly List<(DateTimeOffset At, string What)> timeline = [];

    /// <summary>The timeline as it happens, beside the report (the test's output shows only at its end): `tail -f` it.</summary>
    private string? progressFile;

    public void Dispose()
    {
        foreach (var node in nodes) node.Process.Dispose();
        Directory.Delete(temp, recursive: true);
    }

    /// <summary>One node the soak started, in its position of the cluster.</summary>
    private sealed class SoakNode(int position, SoakNodeKind kind, int port, SweepProcess process)
    {
        public int Position { get; } = position;
        public SoakNodeKind Kind { get; } = kind;
        public SweepProcess Process { get; } = process;
        public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;
        public DateTimeOffset? KilledAt { get; set; }
        public DateTimeOffset? ExitedAt { get; set; }

        /// <summary>host:port, what --join takes and what trial events name.</summary>
        public string Address { get; } = $"127.0.0.1:{port}";

        public bool Alive => KilledAt is null && ExitedAt is null;

        /// <summary>When it said it is a member in state Up.</summary>
        public DateTimeOffset? UpAt => Process.Output.FirstOrDefault(l => !l.Error && SweepProcess.SaysUp(l.Text))?.At;

        public override string ToString() => $"{Kind.ToString().ToLowerInvariant()} {Address} (pid {Process.Id})";
    }

    [Fact]
    public async Task Nodes_killed_with_kill_9_and_replaced_lose_no_trial_record_none_twice_never_down_themselves_and_the_sweep_finishes()
    {
        var settings = SoakSettings.From(Environment.GetEnvironmentVariable, Path.Combine(RepositoryFiles.Root, "artifacts", "soak", "report.md"));
        testOutput.WriteLine(settings.Summary);
        Directory.CreateDirectory(Path.GetDirectoryName(settings.ReportPath)!);
        File.Delete(settings.ReportPath); // never a report of an earlier run
        progressFile = Path.Combine(Path.GetDirectoryName(settings.ReportPath)!, "progress.log");
        File.WriteAllText(progressFile, settings.Summary + Environment.NewLine);
        var journal = new JournalSettings(temp, postgres.CreateDatabase());
        var spec = Path.Combine(temp, "soak.conf");
        File.WriteAllText(spec, settings.SpecText(SweepId));

        // The cluster of issue 13: the run node records the sweep, the others join it; the chaos starts once all are up.
        var first = Start(settings, journal, spec, position: 0, join: null);
        first.Process.WaitForLine(l => l.StartsWith($"sweep {SweepId} ", StringComparison.Ordinal), Setup);
        for (int position = 1; position < settings.Nodes.Count; position++) Start(settings, journal, spec, position, first.Address);
        foreach (var node in nodes) node.Process.WaitForLine(SweepProcess.SaysUp, Setup);

        var chaosStart = DateTimeOffset.UtcNow;
        var chaosEnd = chaosStart + settings.Duration;
        var deadline = chaosEnd + settings.FinishWithin;
        Note(chaosStart, $"every node up: {string.Join(", ", nodes)}");
        var schedule = SoakSchedule.Create(settings);
        var replacements = new List<(DateTimeOffset At, SoakKill For)>();
        var kills = new List<SoakKillRecord>();
        int nextKill = 0, exits = 0;
        DateTimeOffset? finished = null;
        var nextPoll = DateTimeOffset.UtcNow;
        var nextProgress = chaosStart + TimeSpan.FromSeconds(30);
        while (DateTimeOffset.UtcNow < deadline)
        {
            var now = DateTimeOffset.UtcNow;
            var exited = nodes.Where(n => n.Alive && n.Process.HasExited).ToList();
            if (now >= nextPoll || exited.Count > 0)
            {
                var state = await ReadStateAsync(journal);
                if (state?.Phase == SweepPhase.Completed)
                {
                    finished = DateTimeOffset.UtcNow;
                    Note(finished.Value, $"the journal shows the sweep completed ({state.FinishedCount}/{state.Trials.Count} finished)");
                    break;
                }
                if (now >= nextProgress && state is not null)
                {
                    Say($"t+{(now - chaosStart).TotalSeconds:0} s: {state.FinishedCount}/{state.Trials.Count} trials finished");
                    nextProgress += TimeSpan.FromSeconds(30);
                }
                nextPoll = now + Poll;
            }
            // A node that ends on its own (downed, crashed) is replaced like a killed one.
            foreach (var node in exited)
            {
                node.ExitedAt = now;
                var last = node.Process.Output.LastOrDefault()?.Text ?? "";
                Note(now, $"{node} exited on its own with code {node.Process.ExitCode}: {last}");
                replacements.Add((now + settings.ReplaceAfter, new SoakKill(now - chaosStart, node.Position, exits++)));
            }
            if (nextKill < schedule.Count && chaosStart + schedule[nextKill].At <= now)
            {
                var kill = schedule[nextKill++];
                if (await KillAsync(journal, kill.Position) is { } record)
                {
                    kills.Add(record);
                    replacements.Add((record.At + settings.ReplaceAfter, kill));
                }
            }
            foreach (var due in replacements.Where(r => r.At <= now).ToList())
            {
                if (Replace(settings, journal, spec, due.For)) replacements.Remove(due);
            }
            await Task.Delay(Tick);
        }
        if (finished is null) Note(DateTimeOffset.UtcNow, "deadline passed: the sweep did not finish");
        else await Task.Delay(TimeSpan.FromSeconds(3)); // the workers' JSON log files are flushed every second

        var events = await SweepJournal.EventsAsync(journal, SweepId);
        var ends = SweepLogs.Read(SweepLogging.Directory(journal), [], SweepId, trialName: null).Select(AttemptEnd.Parse).OfType<AttemptEnd>();
        var spans = nodes.Where(n => settings.SlotsOf(n.Kind) > 0 && n.UpAt is not null)
            .Select(n => new SlotSpan(n.UpAt!.Value, n.KilledAt ?? n.ExitedAt, settings.SlotsOf(n.Kind)))
            .ToList();
        var consoles = nodes.Select(n => new NodeConsole(n.Address, n.Kind, n.KilledAt, n.Process.Output)).ToList();
        var result = SoakAnalysis.Analyse(events, ends, kills, spans, consoles, DateTimeOffset.UtcNow);
        var targets = SoakReport.Targets(result, chaosStart, deadline);
        var report = SoakReport.Markdown(settings, result, targets, chaosStart, timeline);
        testOutput.WriteLine(report);
        WriteArtifacts(settings.ReportPath, report, journal);

        var misses = SoakReport.Misses(targets, settings.Strict);
        Assert.True(misses.Count == 0, $"missed: {string.Join("; ", misses)} (report: {settings.ReportPath})");
    }

    /// <summary>The sweep's state in the journal; null (noted) when the journal cannot be read this time: the soak looks again.</summary>
    private async Task<SweepState?> ReadStateAsync(JournalSettings journal)
    {
        try
        {
            return await SweepJournal.ReadAsync(journal, SweepId);
        }
        catch (JournalUnavailableException e)
        {
            Note(DateTimeOffset.UtcNow, $"could not read the journal: {e.Message}");
            return null;
        }
    }

    /// <summary>Starts the node of <paramref name="position"/>: the very first run node records the sweep; every other node joins <paramref name="join"/>.</summary>
    private SoakNode Start(SoakSettings settings, JournalSettings journal, string spec, int position, string? join)
    {
        var kind = settings.Nodes[position];
        int port = FreePort.Next();
        string slots = settings.SlotsOf(kind).ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] node = kind switch
        {
            SoakNodeKind.Run when join is null => ["run", spec, "--sweep-id", SweepId, "--port", $"{port}", "--workers", slots, "--threads", "1"],
            SoakNodeKind.Run or SoakNodeKind.Standby => ["resume", SweepId, "--port", $"{port}", "--join", join!, "--workers", slots, .. kind == SoakNodeKind.Run ? new[] { "--threads", "1" } : []],
            _ => ["worker", "--join", join!, "--port", $"{port}", "--workers", slots, "--threads", "1"],
        };
        var started = new SoakNode(position, kind, port, SweepProcess.Start([.. node, "--journal", journal.Journal!, "--data-dir", temp]));
        nodes.Add(started);
        Note(started.StartedAt, $"started {started}{(join is null ? "" : $" joining {join}")}");
        return started;
    }

    /// <summary>Kills the node at <paramref name="position"/> with kill -9, noting first whether the journal names it as the coordinator's host; null when none is alive there.</summary>
    private async Task<SoakKillRecord?> KillAsync(JournalSettings journal, int position)
    {
        var victim = nodes.LastOrDefault(n => n.Position == position && n.Alive);
        if (victim is null)
        {
            Note(DateTimeOffset.UtcNow, $"no node alive at position {position} to kill");
            return null;
        }
        SweepOwner? owner = null;
        try
        {
            owner = await SweepOwnership.ReadAsync(journal, SweepId);
        }
        catch (System.Data.Common.DbException e)
        {
            Note(DateTimeOffset.UtcNow, $"could not read the coordinator's host from sweep_owner ({e.Message.Split('\n')[0]}): this kill is not counted as one of the coordinator's host");
        }
        bool hosted = owner is { Released: false } && owner.Owner.Pid == victim.Process.Id;
        try
        {
            victim.Process.Signal(SweepProcess.SIGKILL);
        }
        catch (InvalidOperationException)
        {
            return null; // it ended on its own a moment ago: the next look at the nodes replaces it
        }
        var at = victim.KilledAt = DateTimeOffset.UtcNow;
        Note(at.Value, $"kill -9 {victim}{(hosted ? ", hosting the coordinator" : "")}");
        return new SoakKillRecord(at.Value, position, victim.Kind, victim.Address, victim.Process.Id, hosted);
    }

    /// <summary>Starts a node of the kind killed at <paramref name="kill"/>'s position, joining a live node; false when no node is up to join yet.</summary>
    private bool Replace(SoakSettings settings, JournalSettings journal, string spec, SoakKill kill)
    {
        var live = nodes.Where(n => n.Alive && n.UpAt is not null).Select(n => (n.Position, n.StartedAt)).ToList();
        if (SoakSchedule.JoinTarget(kill, settings.JoinRule, live) is not { } target) return false;
        Start(settings, journal, spec, kill.Position, nodes.Last(n => n.Position == target && n.Alive).Address);
        return true;
    }

    private void Note(DateTimeOffset at, string what)
    {
        timeline.Add((at, what));
        Say($"{at:HH:mm:ss.f} {what}");
    }

    private void Say(string line)
    {
        testOutput.WriteLine(line);
        if (progressFile is not null) File.AppendAllText(progressFile, line + Environment.NewLine);
    }

    /// <summary>The report, each node's console (with the time of each line) and the nodes' JSON log files, beside the report.</summary>
    private void WriteArtifacts(string reportPath, string report, JournalSettings journal)
    {
        var folder = Path.GetDirectoryName(reportPath)!;
        Directory.CreateDirectory(folder);
        File.WriteAllText(reportPath, report);
        foreach (var sub in new[] { "nodes", "logs" })
        {
            if (Directory.Exists(Path.Combine(folder, sub))) Directory.Delete(Path.Combine(folder, sub), recursive: true);
            Directory.CreateDirectory(Path.Combine(folder, sub));
        }
        foreach (var (node, index) in nodes.Select((n, i) => (n, i)))
        {
            var lines = node.Process.Output.Select(l => $"{l.At:HH:mm:ss.fff} {(l.Error ? "err" : "out")} {l.Text}");
            File.WriteAllLines(Path.Combine(folder, "nodes", $"{index + 1:00}-{node.Kind.ToString().ToLowerInvariant()}-{node.Address.Replace(':', '-')}.log"), lines);
        }
        foreach (var file in Directory.GetFiles(SweepLogging.Directory(journal), "*.json"))
            File.Copy(file, Path.Combine(folder, "logs", Path.GetFileName(file)));
    }
}
