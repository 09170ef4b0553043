using System.Diagnostics;
using System.Text.Json;
using Sweep.GpuWorker.Runners;
using Sweep.GpuWorker.Training;
using Sweep.Protocol;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Tests;

/// <summary>Command trials: the user's program run per attempt, on real processes (bash and python3 scripts written here).</summary>
public sealed class CommandRunnerTests : IDisposable
{
    private readonly TempDirectory temp = new();
    private readonly RecordingLog log = new();

    public void Dispose() => temp.Dispose();

    private static readonly TrialSpec Spec = new(64, 128, 0.01, 4, 1, 7, new SolverSpec(), new DatasetSpec("unused"));

    private string Script(string name, string text)
    {
        File.WriteAllText(temp.File(name), text.Replace("\r\n", "\n"));
        return name;
    }

    private string CheckpointPath(string name) => Path.Combine(temp.Path, "checkpoints", name + ".ckpt");

    private string TrialFolder(string name) => Path.Combine(temp.Path, "checkpoints", name);

    private RunTrial Trial(string[] arguments, int attempt = 1, string name = "trial-a", double grace = CommandSpec.DefaultGraceSeconds, string? resume = null) =>
        new("sweep-1", new TrialDefinition("id-" + name, name, Spec), attempt, ModelKind.Command, new SyntheticSpec(), new DivergencePolicy(),
            CheckpointPath(name), resume, new CommandSpec(arguments, temp.Path, grace));

    private static TrainingOptions Options(RunTrial trial) =>
        new(Threads: 2, Device: "cpu", trial.CheckpointPath, trial.ResumeFrom, CheckpointOnCancel: true, VersionedCheckpoints: true);

    private TrainingResult Run(RunTrial trial, Recorder? observer = null, CancellationToken cancellation = default) =>
        new CommandRunner(log).Run(trial, Options(trial), observer ?? new Recorder(), cancellation);

    /// <summary>What a run reported, without its wall-clock time and memory.</summary>
    private static List<(int, double, double, double, double, double)> Computed(IEnumerable<TrialMetrics> metrics) =>
        metrics.Select(m => (m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate)).ToList();

    /// <summary>Whether a process runs: not gone, not a zombie.</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Waits up to 2 s for the processes to go (a SIGKILL lands within moments): true when none runs.</summary>
    private static bool AllGone(IEnumerable<int> pids)
    {
        var clock = Stopwatch.StartNew();
        while (pids.Any(IsRunning))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(2)) return false;
            Thread.Sleep(20);
        }
        return true;
    }

    [Fact]
    public void Completes_with_the_test_points_it_printed_and_gets_its_parameters_in_arguments_and_environment()
    {
        Script("train.py", """
            import json, os, sys
            print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                              "env": {k: v for k, v in os.environ.items() if k.startswith("SWEEP_") or k == "PYTHONUNBUFFERED"}}))
            print(json.dumps({"iteration": 0, "train-loss": 2.3, "train-accuracy": 0.09, "test-loss": 2.31, "test-accuracy": 0.1, "learning-rate": 0.01}))
            print(json.dumps({"iteration": 2, "train-loss": 0.5, "test-loss": 0.45, "test-accuracy": 0.9}))
            print(json.dumps({"iteration": 4, "test-accuracy": 0.97, "train-loss": 0.21}))
            """);
        var trial = Trial(["python3", "${spec-dir}/train.py", "--lr", "${base-lr}", "--batch-size", "${batch-size}", "--tag=s${seed}-${max-iter}"]);
        var observer = new Recorder();

        var result = Run(trial, observer);

        Assert.Equal(TrialOutcome.Completed, result.Outcome);
        Assert.Equal(4, result.Iteration);
        Assert.Null(result.Divergence);
        Assert.Null(result.CheckpointPath);
        Assert.Equal(
            [(0, 2.3, 0.09, 2.31, 0.1, 0.01), (2, 0.5, double.NaN, 0.45, 0.9, double.NaN), (4, 0.21, double.NaN, double.NaN, 0.97, double.NaN)],
            Computed(result.Metrics));
        Assert.Equal(result.Metrics, observer.Metrics);
        Assert.All(result.Metrics, m => Assert.True(m.Seconds >= 0 && m.Seconds < 30, $"{m.Seconds} s"));
        // python3's own resident set: megabytes, not nothing and not the test host's.
        Assert.All(result.Metrics, m => Assert.InRange(m.PeakMemoryBytes, 1L << 20, 1L << 30));

        using var echoed = JsonDocument.Parse(Assert.Single(log.Output, line => line.StartsWith("{\"argv\"", StringComparison.Ordinal)));
        var root = echoed.RootElement;
        Assert.Equal(["--lr", "0.01", "--batch-size", "64", "--tag=s7-4"], root.GetProperty("argv").EnumerateArray().Select(a => a.GetString()!));
        var attemptFolder = Path.Combine(TrialFolder("trial-a"), "attempt-1");
        Assert.Equal(attemptFolder, root.GetProperty("cwd").GetString());
        var expected = CommandParameters.Of(Spec).ToDictionary(p => CommandParameters.EnvironmentVariable(p.Key), p => p.Value);
        expected["SWEEP_SWEEP_ID"] = "sweep-1";
        expected["SWEEP_TRIAL_ID"] = "id-trial-a";
        expected["SWEEP_TRIAL_NAME"] = "trial-a";
        expected["SWEEP_ATTEMPT"] = "1";
        expected["SWEEP_CHECKPOINT_DIR"] = Path.Combine(TrialFolder("trial-a"), "checkpoint");
        expected["SWEEP_DEVICE"] = "cpu";
        expected["SWEEP_THREADS"] = "2";
        expected["PYTHONUNBUFFERED"] = "1";
        var environment = root.GetProperty("env").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.Equal(expected.OrderBy(p => p.Key, StringComparer.Ordinal), environment.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal("0.01", environment["SWEEP_PARAM_BASE_LR"]);
        Assert.True(Directory.Exists(expected["SWEEP_CHECKPOINT_DIR"]));
    }

    [Fact]
    public void A_NaN_metric_is_a_divergence_at_its_test_point_and_the_program_is_stopped()
    {
        Script("diverge.py", """
            import json, os, time
            print(json.dumps({"pid": os.getpid()}))
            print(json.dumps({"iteration": 0, "train-loss": 2.3, "test-loss": 2.3}))
            print(json.dumps({"iteration": 100, "train-loss": 1.0, "test-loss": 0.9}))
            print(json.dumps({"iteration": 200, "train-loss": 0.8, "test-loss": float("nan")}))
            time.sleep(60)
            """);
        var observer = new Recorder();
        var clock = Stopwatch.StartNew();

        var result = Run(Trial(["python3", "${spec-dir}/diverge.py"]), observer);

        Assert.Equal(TrialOutcome.Diverged, result.Outcome);
        Assert.Equal(new DivergenceDetected(200, double.NaN, "test-loss is NaN"), result.Divergence);
        Assert.Equal(200, result.Iteration);
        // The diverged test point is not reported, as the trainer does not report its NaN step.
        Assert.Equal([0, 100], result.Metrics.Select(m => m.Iteration));
        Assert.Equal([0, 100], observer.Metrics.Select(m => m.Iteration));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"took {clock.Elapsed}: python ends at SIGTERM, long before its 60 s sleep");
        using var echoed = JsonDocument.Parse(Assert.Single(log.Output, line => line.StartsWith("{\"pid\"", StringComparison.Ordinal)));
        Assert.True(AllGone([echoed.RootElement.GetProperty("pid").GetInt32()]), "the diverged program still runs");
    }

    [Fact]
    public void A_non_zero_exit_fails_with_its_code_and_the_last_line_of_standard_error()
    {
        Script("fail.sh", """
            echo "loading the data" >&2
            echo '{"iteration": 0, "train-loss": 2.3}'
            echo "ValueError: something broke" >&2
            exit 3
            """);
        var observer = new Recorder();

        var error = Assert.Throws<CommandFailedException>(() => Run(Trial(["bash", "${spec-dir}/fail.sh"]), observer));

        Assert.Equal("program exited with code 3; last line on stderr: ValueError: something broke", error.Message);
        Assert.Equal(3, error.ExitCode);
        Assert.Equal([0], observer.Metrics.Select(m => m.Iteration));
        Assert.Equal(["loading the data", "ValueError: something broke"], log.Errors);
    }

    [Fact]
    public void A_program_killed_by_a_signal_fails_naming_the_signal()
    {
        Script("killed.sh", """
            echo "about to go" >&2
            kill -9 $$
            """);

        var error = Assert.Throws<CommandFailedException>(() => Run(Trial(["bash", "${spec-dir}/killed.sh"])));

        Assert.Equal("program was killed by signal 9 (SIGKILL); last line on stderr: about to go", error.Message);
    }

    [Fact]
    public void A_failure_after_an_out_of_memory_line_on_standard_error_is_out_of_memory()
    {
        Script("oom.sh", """
            echo '{"iteration": 0, "train-loss": 2.3}'
            echo 'RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)' >&2
            echo 'exiting' >&2
            exit 1
            """);

        var error = Assert.Throws<TrialOutOfMemoryException>(() => Run(Trial(["bash", "${spec-dir}/oom.sh"])));

        Assert.Equal("program exited with code 1 after out of memory: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)", error.Message);
    }

    [Fact]
    public void Cancelling_a_program_that_ignores_SIGTERM_kills_it_and_its_children_after_the_grace_period()
    {
        Script("stubborn.sh", """
            trap '' TERM
            sleep 100 &
            echo "{\"pids\": [$$, $!]}"
            wait
            """);
        using var cancellation = new CancellationTokenSource();
        var clock = new Stopwatch();
        log.OnOutput = line =>
        {
            if (!line.StartsWith("{\"pids\"", StringComparison.Ordinal)) return;
            clock.Start();
            cancellation.Cancel();
        };

        var result = Run(Trial(["bash", "${spec-dir}/stubborn.sh"], grace: 1), cancellation: cancellation.Token);

        clock.Stop();
        Assert.Equal(TrialOutcome.Cancelled, result.Outcome);
        Assert.Null(result.CheckpointPath);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.95), TimeSpan.FromSeconds(4));
        using var echoed = JsonDocument.Parse(Assert.Single(log.Output, line => line.StartsWith("{\"pids\"", StringComparison.Ordinal)));
        var pids = echoed.RootElement.GetProperty("pids").EnumerateArray().Select(p => p.GetInt32()).ToList();
        Assert.Equal(2, pids.Count);
        Assert.True(AllGone(pids), "the program or its child still runs");
        Assert.Contains(log.Notes, note => note is { Warning: true, Text: "the program did not end within the grace period of 1 s after SIGTERM: killed with SIGKILL" });
    }

    [Fact]
    public void Lines_that_are_not_test_points_go_to_the_log_and_do_not_break_parsing()
    {
        Script("chatty.sh", """
            echo 'starting'
            echo '{not json'
            echo '[1, 2, 3]'
            echo '{"loss": 3}'
            echo '{"iteration": "ten", "train-loss": 1}'
            echo '{"iteration": 0, "train-loss": 2.5}'
            echo 'epoch 1 {"iteration": 5}'
            echo '{"iteration": 10, "train-loss": 1.5, "note": "NaN inside a string is text"}'
            echo ''
            echo '  {"iteration": 20, "train-loss": 0.5}  '
            echo 'done'
            """);

        var result = Run(Trial(["bash", "${spec-dir}/chatty.sh"]));

        Assert.Equal(TrialOutcome.Completed, result.Outcome);
        Assert.Equal(20, result.Iteration);
        Assert.Equal([(0, 2.5), (10, 1.5), (20, 0.5)], result.Metrics.Select(m => (m.Iteration, m.TrainLoss)));
        Assert.Equal(
            ["starting", "{not json", "[1, 2, 3]", "{\"loss\": 3}", "{\"iteration\": \"ten\", \"train-loss\": 1}", "epoch 1 {\"iteration\": 5}", "", "done"],
            log.Output);
        Assert.Empty(log.Errors);
    }

    [Fact]
    public void A_checkpoint_in_its_directory_is_resumed_by_the_next_attempt_and_the_pair_reports_what_an_uninterrupted_run_does()
    {
        Script("resumable.py", """
            import json, os, time
            checkpoints = os.environ["SWEEP_CHECKPOINT_DIR"]
            resume = os.environ.get("SWEEP_RESUME_FROM")
            print(json.dumps({"resume-from": resume, "cwd": os.getcwd()}))
            start, loss = 0, 4.0
            if resume:
                with open(os.path.join(resume, "state.json")) as f:
                    state = json.load(f)
                start, loss = state["iteration"], state["loss"]
            for i in range(start + 1, 5):
                loss = loss * 0.5 + 0.1
                print(json.dumps({"iteration": i, "train-loss": loss, "test-loss": loss + 0.05, "test-accuracy": 1 - loss / 10}))
                if i == 2:
                    with open(os.path.join(checkpoints, "state.json"), "w") as f:
                        json.dump({"iteration": i, "loss": loss}, f)
                    print(json.dumps({"checkpoint": i}))
                    time.sleep(0.5)
            """);
        string[] arguments = ["python3", "${spec-dir}/resumable.py"];
        var uninterrupted = Run(Trial(arguments, name: "trial-u"));
        Assert.Equal(TrialOutcome.Completed, uninterrupted.Outcome);
        Assert.Equal([1, 2, 3, 4], uninterrupted.Metrics.Select(m => m.Iteration));

        var checkpointDirectory = Path.Combine(TrialFolder("trial-r"), "checkpoint");
        using var cancellation = new CancellationTokenSource();
        var first = new Recorder { OnCheckpointed = (_, _) => cancellation.Cancel() };
        var interrupted = Run(Trial(arguments, name: "trial-r"), first, cancellation.Token);

        Assert.Equal(TrialOutcome.Cancelled, interrupted.Outcome);
        Assert.Equal(2, interrupted.Iteration);
        Assert.Equal(checkpointDirectory, interrupted.CheckpointPath);
        Assert.Equal([(2, checkpointDirectory)], first.Saved);
        Assert.Equal([1, 2], interrupted.Metrics.Select(m => m.Iteration));
        Assert.DoesNotContain(log.Notes, note => note.Warning);

        var resumed = Run(Trial(arguments, attempt: 2, name: "trial-r", resume: checkpointDirectory));

        Assert.Equal(TrialOutcome.Completed, resumed.Outcome);
        Assert.Equal(4, resumed.Iteration);
        Assert.Equal([3, 4], resumed.Metrics.Select(m => m.Iteration));
        Assert.Equal(Computed(uninterrupted.Metrics), Computed(interrupted.Metrics.Concat(resumed.Metrics)));
        var echoes = log.Output.Where(line => line.StartsWith("{\"resume-from\"", StringComparison.Ordinal))
            .Select(line => JsonSerializer.Deserialize<Dictionary<string, string?>>(line)!)
            .ToList();
        Assert.Equal(3, echoes.Count);
        Assert.Null(echoes[0]["resume-from"]);
        Assert.Null(echoes[1]["resume-from"]);
        Assert.Equal(checkpointDirectory, echoes[2]["resume-from"]);
        Assert.Equal(Path.Combine(TrialFolder("trial-r"), "attempt-1"), echoes[1]["cwd"]);
        Assert.Equal(Path.Combine(TrialFolder("trial-r"), "attempt-2"), echoes[2]["cwd"]);
    }

    [Fact]
    public void An_attempt_without_a_checkpoint_to_resume_from_starts_in_an_emptied_checkpoint_directory_and_one_with_it_keeps_it()
    {
        Script("peek.sh", """
            echo "resume=${SWEEP_RESUME_FROM-unset} files=$(ls "$SWEEP_CHECKPOINT_DIR" | tr '\n' ' ')"
            """);
        var trial = Trial(["bash", "${spec-dir}/peek.sh"], attempt: 3);
        var checkpointDirectory = Path.Combine(TrialFolder("trial-a"), "checkpoint");
        Directory.CreateDirectory(checkpointDirectory);
        File.WriteAllText(Path.Combine(checkpointDirectory, "state"), "x");

        // From scratch (a halved batch, or no checkpoint recorded): what another run left there goes.
        Run(trial);
        File.WriteAllText(Path.Combine(checkpointDirectory, "state"), "x");
        Run(trial with { ResumeFrom = checkpointDirectory });

        Assert.Equal(["resume=unset files=", "resume=" + checkpointDirectory + " files=state "], log.Output);
    }

    [Fact]
    public void An_unknown_placeholder_is_bad_input_naming_it_and_nothing_is_started()
    {
        var error = Assert.Throws<InvalidInputException>(() => Run(Trial(["python3", "train.py", "--lr", "${learning-rate}"])));

        Assert.StartsWith("command argument '${learning-rate}': unknown placeholder ${learning-rate} (known: ${base-lr}, ${batch-size}, ", error.Message);
        Assert.Contains("${spec-dir}", error.Message);
        Assert.False(Directory.Exists(TrialFolder("trial-a")));
    }

    [Fact]
    public void A_program_that_cannot_be_started_fails_the_attempt_saying_so()
    {
        var error = Assert.Throws<CommandFailedException>(() => Run(Trial(["${spec-dir}/no-such-program", "--lr", "${base-lr}"])));

        Assert.StartsWith($"cannot start {temp.Path}/no-such-program: ", error.Message);
        Assert.Null(error.ExitCode);
    }

    [Fact]
    public void A_trial_without_a_command_is_refused_naming_it()
    {
        var trial = Trial(["true"]) with { Command = null };

        var error = Assert.Throws<InvalidOperationException>(() => Run(trial));

        Assert.Contains("trial-a", error.Message);
    }

    [Fact]
    public void Test_points_are_read_with_NaN_and_Infinity_as_Python_writes_them()
    {
        var point = Assert.IsType<TestPointReport>(CommandOutput.Parse(
            """{"iteration": 5, "train-loss": Infinity, "test-loss": -Infinity, "test-accuracy": NaN, "learning-rate": 1e-3, "train-accuracy": "NaN", "note": "Infinity, NaN"}"""));

        Assert.Equal(5, point.Iteration);
        Assert.Equal(
            new Dictionary<string, double>
            {
                ["train-loss"] = double.PositiveInfinity,
                ["test-loss"] = double.NegativeInfinity,
                ["test-accuracy"] = double.NaN,
                ["learning-rate"] = 0.001,
                ["train-accuracy"] = double.NaN,
            }.OrderBy(p => p.Key, StringComparer.Ordinal),
            point.Metrics.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(new CheckpointReport(300), CommandOutput.Parse("""{"checkpoint": 300}"""));
        Assert.Equal(100, Assert.IsType<TestPointReport>(CommandOutput.Parse("""{"iteration": 100.0}""")).Iteration);
        Assert.Null(CommandOutput.Parse("""{"iteration": 1.5, "train-loss": 1}"""));
        Assert.Null(CommandOutput.Parse("""{"iteration": -1}"""));
        Assert.Null(CommandOutput.Parse("""{"NaNny": 1}"""));
        Assert.Null(CommandOutput.Parse("NaN"));
        Assert.Equal("""{"a": "NaN", "b": ["-Infinity", "Infinity"], "c": "NaN, Infinity"}""", CommandOutput.QuoteNamedLiterals("""{"a": NaN, "b": [-Infinity, Infinity], "c": "NaN, Infinity"}"""));
    }

    [Fact]
    public void Exit_codes_above_128_read_as_signals()
    {
        Assert.Equal("program exited with code 3", CommandRunner.DescribeExit(3));
        Assert.Equal("program was killed by signal 15 (SIGTERM)", CommandRunner.DescribeExit(143));
        Assert.Equal("program was killed by signal 10", CommandRunner.DescribeExit(138));
        Assert.Equal("program exited with code 255", CommandRunner.DescribeExit(255));
    }

    private sealed class RecordingLog : ICommandLog
    {
        public Action<string>? OnOutput { get; set; }
        public List<string> Output { get; } = [];
        public List<string> Errors { get; } = [];
        public List<(string Text, bool Warning)> Notes { get; } = [];

        public void Line(RunTrial trial, CommandStream stream, string line)
        {
            if (stream == CommandStream.Error)
            {
                Errors.Add(line);
                return;
            }
            Output.Add(line);
            OnOutput?.Invoke(line);
        }

        public void Note(RunTrial trial, string text, bool warning) => Notes.Add((text, warning));
    }

    private sealed class Recorder : ITrainingObserver
    {
        public Action<int, string>? OnCheckpointed { get; init; }
        public List<TrialMetrics> Metrics { get; } = [];
        public List<(int, string)> Saved { get; } = [];

        public void OnMetrics(TrialMetrics metrics) => Metrics.Add(metrics);

        public void OnCheckpoint(int iteration, string path)
        {
            Saved.Add((iteration, path));
            OnCheckpointed?.Invoke(iteration, path);
        }
    }
}
