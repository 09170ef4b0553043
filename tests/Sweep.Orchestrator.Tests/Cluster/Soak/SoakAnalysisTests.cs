using Sweep.Orchestrator.Running;
using Sweep.Orchestrator.Specs;
using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests.Cluster.Soak;

/// <summary>The soak's plain parts: settings, the kill schedule, and every measurement from hand-made events, log lines and consoles.</summary>
public sealed class SoakAnalysisTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    private static DateTimeOffset At(double seconds) => T0.AddSeconds(seconds);

    private static SoakSettings Settings(params (string Name, string Value)[] set) =>
        SoakSettings.From(name => set.FirstOrDefault(s => s.Name == name).Value, "/tmp/report.md");

    private static SweepDefinition Definition(SoakSettings settings) => SweepSpecLoader.Parse(settings.SpecText("soak"), "soak.conf", Path.GetTempPath(), []);

    [Fact]
    public void The_defaults_are_the_ci_version_and_ten_minutes_gives_the_issues_1000_trials()
    {
        var ci = Settings();
        Assert.Equal(TimeSpan.FromMinutes(2), ci.Duration);
        Assert.Equal(TimeSpan.FromSeconds(20), ci.KillEvery);
        Assert.Equal(TimeSpan.FromSeconds(5), ci.ReplaceAfter);
        Assert.Equal([SoakNodeKind.Run, SoakNodeKind.Worker, SoakNodeKind.Worker, SoakNodeKind.Standby], ci.Nodes);
        Assert.Equal(200, ci.Trials);
        Assert.False(ci.Strict);

        var tenMinutes = Settings(("SWEEP_SOAK_MINUTES", "10"), ("SWEEP_SOAK_STRICT", "1"));
        Assert.Equal(1000, tenMinutes.Trials);
        Assert.Equal(30, SoakSchedule.Create(tenMinutes).Count);
        Assert.True(tenMinutes.Strict);
    }

    [Fact]
    public void The_spec_expands_to_the_trials_the_settings_say_with_one_rate_in_ten_diverging()
    {
        var settings = Settings(("SWEEP_SOAK_TRIALS", "5x10x2"));
        var definition = Definition(settings);
        Assert.Equal(100, definition.Trials.Count);
        Assert.Equal(10, definition.Trials.Count(t => t.Spec.BaseLr >= definition.Synthetic.DivergentLr));
        Assert.All(definition.Trials, t => Assert.Equal(160, t.Spec.MaxIter));
        Assert.Equal(20, definition.Synthetic.IterationMs);
        Assert.Equal(100, definition.Trials.Select(t => t.Name).Distinct().Count());
    }

    [Theory]
    [InlineData("SWEEP_SOAK_MINUTES", "soon")]
    [InlineData("SWEEP_SOAK_KILL_EVERY", "-1")]
    [InlineData("SWEEP_SOAK_SEED", "1.5")]
    [InlineData("SWEEP_SOAK_NODES", "run=1,gpu=2")]
    [InlineData("SWEEP_SOAK_NODES", "worker=3")]
    [InlineData("SWEEP_SOAK_TRIALS", "5x1x20")]
    [InlineData("SWEEP_SOAK_JOIN", "nearest")]
    [InlineData("SWEEP_SOAK_REPLACE_AFTER", "20")]
    public void A_bad_value_is_refused_in_one_line_naming_its_variable(string name, string value)
    {
        var refused = Assert.Throws<ArgumentException>(() => Settings((name, value)));
        Assert.StartsWith(name + ":", refused.Message);
        Assert.DoesNotContain("\n", refused.Message);
    }

    [Fact]
    public void The_schedule_is_a_function_of_the_seed_a_kill_every_interval_to_the_end_of_the_window()
    {
        var settings = Settings(("SWEEP_SOAK_MINUTES", "10"));
        var schedule = SoakSchedule.Create(settings);
        Assert.Equal(Enumerable.Range(1, 30).Select(k => TimeSpan.FromSeconds(20 * k)), schedule.Select(k => k.At));
        Assert.Equal(schedule, SoakSchedule.Create(settings));
        Assert.NotEqual(schedule.Select(k => k.Position), SoakSchedule.Create(settings with { Seed = 14 }).Select(k => k.Position));
        // Every position is hit, none always.
        Assert.Equal(4, schedule.Select(k => k.Position).Distinct().Count());
        Assert.All(schedule.GroupBy(k => k.Position), g => Assert.InRange(g.Count(), 1, 20));
    }

    [Fact]
    public void A_replacement_joins_a_live_node_other_than_the_killed_one()
    {
        (int, DateTimeOffset)[] live = [(0, At(30)), (1, At(0)), (2, At(10)), (3, At(5))];
        foreach (var draw in Enumerable.Range(0, 12))
        {
            var target = SoakSchedule.JoinTarget(new SoakKill(TimeSpan.Zero, 2, draw), SoakJoinRule.Random, live);
            Assert.NotNull(target);
            Assert.NotEqual(2, target);
        }
        Assert.Equal(3, SoakSchedule.JoinTarget(new SoakKill(TimeSpan.Zero, 1, 0), SoakJoinRule.Oldest, live));
        Assert.Null(SoakSchedule.JoinTarget(new SoakKill(TimeSpan.Zero, 1, 0), SoakJoinRule.Random, [(1, At(0))]));
    }

    [Fact]
    public void An_attempt_end_is_read_from_a_workers_json_log_line()
    {
        var folder = Directory.CreateTempSubdirectory("soak-logs-").FullName;
        try
        {
            // As TrialWorker writes it (compact JSON through Akka.Logger.Serilog).
            File.WriteAllLines(Path.Combine(folder, "worker-vm-42-20261201.json"),
            [
                """{"@t":"2026-12-01T05:09:48.9912235Z","@mt":"Trial {TrialName} attempt {Attempt} ended on {Worker}: {Outcome} at iteration {Iteration} {Reason}","TrialName":"b16-lr0.001-s2","Attempt":2,"Worker":"sweep@127.0.0.1:4053/cpu-1","Outcome":"Completed","Iteration":100,"Reason":"","SweepId":"soak","TrialId":"afe77177f124","Node":"127.0.0.1:4053"}""",
                """{"@t":"2026-12-01T05:09:49.2026755Z","@mt":"Trial {TrialName} attempt {Attempt} ended on {Worker}: {Outcome} at iteration {Iteration} {Reason}","TrialName":"b16-lr0.1-s1","Attempt":1,"Worker":"127.0.0.1:4054/cpu-2","Outcome":"Diverged","Iteration":20,"Reason":"loss is NaN","SweepId":"soak","TrialId":"98eb54373e60","Node":"127.0.0.1:4053"}""",
                """{"@t":"2026-12-01T05:09:49.3000000Z","@mt":"Trial {TrialName} attempt {Attempt} ended on {Worker}: {Outcome} at iteration {Iteration} {Reason}","TrialName":"b32-lr0.001-s1","Attempt":1,"Worker":"127.0.0.1:4053/cpu-2","Outcome":"Stopped","Iteration":40,"Reason":"worker left","SweepId":"soak","TrialId":"0123456789ab","Node":"127.0.0.1:4053"}""",
                """{"@t":"2026-12-01T05:09:48.4792433Z","@mt":"Worker {Worker} runs trial {TrialName} attempt {Attempt}","Worker":"127.0.0.1:4053/cpu-1","TrialName":"b16-lr0.001-s2","Attempt":2,"SweepId":"soak","TrialId":"afe77177f124"}""",
            ]);
            var ends = SweepLogs.Read(folder, [], "soak", trialName: null).Select(AttemptEnd.Parse).OfType<AttemptEnd>().OrderBy(e => e.At).ToList();
            Assert.Equal(
            [
                new AttemptEnd("b16-lr0.001-s2", 2, "Completed", "127.0.0.1:4053", DateTimeOffset.Parse("2026-12-01T05:09:48.9912235Z", System.Globalization.CultureInfo.InvariantCulture)),
                new AttemptEnd("b16-lr0.1-s1", 1, "Diverged", "127.0.0.1:4054", DateTimeOffset.Parse("2026-12-01T05:09:49.2026755Z", System.Globalization.CultureInfo.InvariantCulture)),
            ], ends);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Lost_recorded_twice_trained_twice_and_attempts_come_from_the_journal_and_the_workers_logs()
    {
        var definition = Definition(Settings(("SWEEP_SOAK_TRIALS", "1x2x2")));
        var (a, b, c, d) = (definition.Trials[0], definition.Trials[1], definition.Trials[2], definition.Trials[3]);
        ISweepEvent[] events =
        [
            new SweepStarted("soak", definition, At(0)),
            new TrialStarted(a.Id, 1, "n1/cpu-1", "n1", 0, At(1)),
            new TrialStarted(b.Id, 1, "n1/cpu-2", "n1", 0, At(1)),
            new TrialStarted(c.Id, 1, "n2/cpu-1", "n2", 0, At(1)),
            new TrialStarted(d.Id, 1, "n2/cpu-2", "n2", 0, At(1)),
            new TrialCompleted(a.Id, 1, At(3)),
            // b's first attempt trained to its end during a hand-over: its result never reached the journal, a second attempt ran.
            new TrialRequeued(b.Id, "worker lost", null, false, At(30), At(30)),
            new TrialStarted(b.Id, 2, "n2/cpu-1", "n2", 60, At(31)),
            new TrialCompleted(b.Id, 2, At(33)),
            // c's end is recorded twice (the same attempt); d never ends.
            new TrialDiverged(c.Id, 1, 20, "loss is NaN", At(2)),
            new TrialDiverged(c.Id, 1, 20, "loss is NaN", At(2.5)),
        ];
        AttemptEnd[] ends = [new(a.Name, 1, "Completed", "n1", At(3)), new(b.Name, 1, "Completed", "n1", At(20)), new(b.Name, 2, "Completed", "n2", At(33))];

        var result = SoakAnalysis.Analyse(events, ends, [], [new SlotSpan(At(0), null, 4)], [], At(40));

        Assert.Equal([d.Name], result.Lost);
        Assert.Equal([c.Name], result.RecordedTwice);
        Assert.Equal([b.Name], result.TrainedTwice);
        Assert.Empty(result.TrainedTwiceAsNodeDied);
        Assert.Equal(0.25, result.TrainedTwiceShare);
        Assert.Empty(result.Failed);
        Assert.Equal(new Dictionary<int, int> { [1] = 3, [2] = 1 }, result.Attempts);
        Assert.Null(result.FinishedAt);
        Assert.Null(result.Makespan);
    }

    [Fact]
    public void An_attempt_that_ended_on_a_node_killed_a_moment_later_died_with_it()
    {
        SoakKillRecord Kill(string node, double at) => new(At(at), 1, SoakNodeKind.Worker, node, 1, HostedCoordinator: false);
        AttemptEnd[] ends = [new("a", 1, "Completed", "n1", At(10)), new("b", 1, "Completed", "n2", At(10)), new("c", 1, "Completed", "n1", At(12.5)), new("d", 1, "Completed", "n3", At(10))];

        var died = SoakAnalysis.EndedAsTheirNodeDied(ends, [Kill("n1", 11.9), Kill("n2", 9.9), Kill("n3", 12.1)]);

        // a: 1.9 s before n1's kill; b ended after n2 was killed (another node of that address); c after n1's kill; d 2.1 s before.
        Assert.Equal(["a"], died);
    }

    [Fact]
    public void A_hand_over_runs_from_the_kill_of_the_coordinators_host_to_the_next_trial_started()
    {
        SoakKillRecord Kill(double at, bool hosted) => new(At(at), 0, SoakNodeKind.Worker, "127.0.0.1:1", 1, hosted);

        var handOvers = SoakAnalysis.HandOvers([Kill(50, true), Kill(10, true), Kill(30, false)], [At(5), At(25), At(40), At(24)]);

        Assert.Equal([TimeSpan.FromSeconds(14), null], handOvers.Select(h => h.NextTrialStartedAfter));
        Assert.Equal(At(10), handOvers[0].Kill.At);
        var spread = Spread.Of([TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(14), TimeSpan.FromSeconds(40)])!;
        Assert.Equal((TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(22), TimeSpan.FromSeconds(40), 4), (spread.Min, spread.Median, spread.Max, spread.Count));
        Assert.Equal(TimeSpan.FromSeconds(14), Spread.Of([TimeSpan.FromSeconds(14), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(99)])!.Median);
        Assert.Null(Spread.Of([]));
    }

    [Fact]
    public void The_ideal_makespan_spreads_the_work_over_the_slots_alive_as_they_come_and_go()
    {
        // 4 slots for 10 s (40 slot-seconds), 2 for the next 10 s (20), then 4 again: 100 slot-seconds take 30 s.
        SlotSpan[] spans = [new(At(0), null, 2), new(At(-5), At(10), 2), new(At(20), null, 2)];
        Assert.Equal(TimeSpan.FromSeconds(30), SoakAnalysis.IdealMakespan(TimeSpan.FromSeconds(100), spans, At(0)));
        Assert.Equal(TimeSpan.FromSeconds(5), SoakAnalysis.IdealMakespan(TimeSpan.FromSeconds(20), spans, At(0)));
        Assert.Equal(TimeSpan.Zero, SoakAnalysis.IdealMakespan(TimeSpan.Zero, spans, At(0)));
        Assert.Null(SoakAnalysis.IdealMakespan(TimeSpan.FromSeconds(100), [new SlotSpan(At(0), At(10), 2)], At(0)));
    }

    [Fact]
    public void The_work_of_a_finished_sweep_is_its_trials_iterations_and_the_makespan_runs_from_its_start_to_its_end()
    {
        var definition = Definition(Settings(("SWEEP_SOAK_TRIALS", "1x2x1")));
        var (fine, diverging) = (definition.Trials.Single(t => t.Spec.BaseLr < 0.1), definition.Trials.Single(t => t.Spec.BaseLr >= 0.1));
        ISweepEvent[] events =
        [
            new SweepStarted("soak", definition, At(0)),
            new TrialStarted(fine.Id, 1, "n1/cpu-1", "n1", 0, At(0)),
            new TrialStarted(diverging.Id, 1, "n1/cpu-2", "n1", 0, At(0)),
            new TrialDiverged(diverging.Id, 1, 20, "loss is NaN", At(1)),
            new TrialCompleted(fine.Id, 1, At(3)),
            new SweepCompleted(At(3)),
        ];

        var result = SoakAnalysis.Analyse(events, [], [], [new SlotSpan(At(-1), null, 1)], [], At(10));

        // 160 + 20 iterations of 20 ms on one slot.
        Assert.Equal(TimeSpan.FromSeconds(3.6), result.IdealMakespan);
        Assert.Equal(TimeSpan.FromSeconds(3), result.Makespan);
        Assert.Equal(3 / 3.6, result.MakespanRatio!.Value, precision: 9);
        Assert.Equal(At(3), result.FinishedAt);
        Assert.Empty(result.Lost);
    }

    [Fact]
    public void A_silence_is_a_stretch_of_more_than_60_s_without_an_event_up_to_the_end()
    {
        var silences = SoakAnalysis.Silences([At(10), At(80), At(100), At(50.5), At(300)], At(0), At(200), SoakAnalysis.SilenceThreshold);

        Assert.Equal([(At(100), At(200))], silences.Select(s => (s.From, s.To)));
        Assert.Equal(TimeSpan.FromSeconds(100), silences[0].Length);
        Assert.Equal([(At(0), At(61))], SoakAnalysis.Silences([], At(0), At(61), SoakAnalysis.SilenceThreshold).Select(s => (s.From, s.To)));
    }

    [Fact]
    public void A_node_that_says_it_was_downed_without_being_killed_is_a_self_downing_once()
    {
        static SweepProcess.OutputLine Line(double at, string text, bool error = true) => new(At(at), text, error);
        NodeConsole[] consoles =
        [
            // The leader downing the node the soak killed: the cluster working as it should.
            new("127.0.0.1:1", SoakNodeKind.Run, null, [Line(20, "[WRN] SBR took decision DownUnreachable and is downing [akka.tcp://sweep@127.0.0.1:2], [1] unreachable of [4] members")]),
            new("127.0.0.1:2", SoakNodeKind.Worker, At(5), []),
            new("127.0.0.1:3", SoakNodeKind.Worker, null,
            [
                Line(30, "this node was removed from the cluster (downed): start it again to rejoin", error: false),
                Line(31, "this node was removed from the cluster (downed): start it again to rejoin", error: false),
            ]),
            new("127.0.0.1:4", SoakNodeKind.Standby, null, [Line(25, "[WRN] SBR took decision DownAll and is downing [akka.tcp://sweep@127.0.0.1:4] including myself, [1] unreachable of [3] members")]),
            new("127.0.0.1:5", SoakNodeKind.Worker, null, [Line(26, "[WRN] SBR detected instability and will down all nodes: ReachabilityChangedStats(...)")]),
        ];

        var downings = SoakAnalysis.SelfDownings(consoles);

        Assert.Equal([("127.0.0.1:4", At(25)), ("127.0.0.1:5", At(26)), ("127.0.0.1:3", At(30))], downings.Select(d => (d.Node, d.At)));
    }

    [Fact]
    public void Hard_targets_are_always_missed_out_loud_and_soft_ones_only_when_strict()
    {
        var clean = new SoakResult(200, At(100), [], [], [], [], [], new Dictionary<int, int> { [1] = 200 }, [], TimeSpan.FromSeconds(100), TimeSpan.FromSeconds(80), [], []);
        var deadline = At(200);
        Assert.All(SoakReport.Targets(clean, At(0), deadline), t => Assert.True(t.Met, t.Name));

        var slow = clean with
        {
            TrainedTwice = ["a", "b", "c"],
            HandOvers = [new HandOver(new SoakKillRecord(At(10), 0, SoakNodeKind.Run, "127.0.0.1:1", 1, true), TimeSpan.FromSeconds(31))],
            Makespan = TimeSpan.FromSeconds(130),
        };
        var targets = SoakReport.Targets(slow, At(0), deadline);
        Assert.Empty(SoakReport.Misses(targets, strict: false));
        Assert.Equal(4, SoakReport.Misses(targets, strict: true).Count);

        var broken = clean with { Lost = ["a"], FinishedAt = null, SelfDownings = [new SelfDowning("127.0.0.1:3", SoakNodeKind.Worker, At(30), "this node was removed from the cluster")] };
        Assert.Equal(3, SoakReport.Misses(SoakReport.Targets(broken, At(0), deadline), strict: false).Count);
        Assert.Single(SoakReport.Misses(SoakReport.Targets(clean with { FinishedAt = At(201) }, At(0), deadline), strict: false));

        var markdown = SoakReport.Markdown(Settings(), broken, SoakReport.Targets(broken, At(0), deadline), At(0), [(At(-2), "started run 127.0.0.1:1 (pid 1)")]);
        Assert.Contains("| trials lost = 0 | 1 of 200 | hard | MISSED |", markdown);
        Assert.Contains("- t+30.0 s worker 127.0.0.1:3: `this node was removed from the cluster`", markdown);
        Assert.Contains("- t-2.0 s started run 127.0.0.1:1 (pid 1)", markdown);
    }
}
