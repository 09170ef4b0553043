using System.Collections.Concurrent;
using Sweep.GpuWorker.Synthetic;
using Sweep.GpuWorker.Workers;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Serialization;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Tests;

/// <summary>
/// A slot's worker process, started for real (Sweep.GpuWorker next to the tests): what it reports
/// is exactly what the same attempt reports on a thread of this process, and when it dies the
/// attempt ends with the cause and a new process takes over.
/// </summary>
public sealed class WorkerProcessSlotTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly TempDirectory temp = new();
    private readonly WorkerSlot slot = new("test/cpu-1", "test", "cpu", 1);

    public void Dispose() => temp.Dispose();

    private RunTrial Trial(int iterationMs = 0, int attempt = 1, string? resumeFrom = null, SyntheticSpec? synthetic = null) =>
        new("sweep-1", new TrialDefinition("id-a", "trial-a", new TrialSpec(64, 128, 0.01, 300, 50, 1, new SolverSpec(), new DatasetSpec("unused"))),
            attempt, ModelKind.Synthetic, synthetic ?? new SyntheticSpec(IterationMs: iterationMs), new DivergencePolicy(), temp.File("trial-a.ckpt"), resumeFrom);

    /// <summary>A message without what differs between two runs of the same attempt: wall-clock seconds.</summary>
    private static string Comparable(ISweepMessage message) =>
        SweepSerializer.ToLine(message is TestPointReported p ? p with { Metrics = p.Metrics with { Seconds = 0 } } : message);

    private sealed class Inbox
    {
        private readonly BlockingCollection<ISweepMessage> messages = [];

        public void Deliver(ISweepMessage message) => messages.Add(message);

        public T Next<T>()
            where T : ISweepMessage
        {
            while (messages.TryTake(out var message, Timeout))
            {
                if (message is T wanted) return wanted;
            }
            throw new TimeoutException($"no {typeof(T).Name} within {Timeout}");
        }

        /// <summary>Every message up to and including the attempt's end.</summary>
        public List<ISweepMessage> UntilEnded()
        {
            var all = new List<ISweepMessage>();
            while (messages.TryTake(out var message, Timeout))
            {
                all.Add(message);
                if (message is TrialEnded) return all;
            }
            throw new TimeoutException($"the attempt did not end within {Timeout}");
        }
    }

    private WorkerProcessSlot Started(Inbox inbox, bool selfTest = false)
    {
        var host = new WorkerProcessSlot(slot, selfTest);
        host.Start(inbox.Deliver, Akka.Event.NoLogger.Instance);
        return host;
    }

    [Fact]
    public void An_attempt_in_a_worker_process_reports_exactly_what_it_reports_on_a_thread_of_this_process()
    {
        var trial = Trial();
        var reference = new List<ISweepMessage>();
        var end = AttemptRun.Run(new SyntheticRunner(), trial, InThreadSlot.TrainingOptionsOf(slot, trial), reference.Add, CancellationToken.None);
        reference.Add(end);
        foreach (var file in Directory.GetFiles(temp.Path)) File.Delete(file);

        var inbox = new Inbox();
        using var host = Started(inbox);
        var ready = inbox.Next<WorkerProcessReady>();
        host.Run(trial);
        var inProcess = inbox.UntilEnded();

        Assert.True(ready.Health.Healthy);
        Assert.NotEqual(Environment.ProcessId, ready.ProcessId);
        Assert.Equal(7, inProcess.OfType<TestPointReported>().Count());
        Assert.Equal(reference.Select(Comparable), inProcess.Select(Comparable));
        Assert.Equal(TrialEndKind.Completed, ((TrialEnded)inProcess[^1]).Kind);
    }

    [Fact]
    public void A_stopped_attempt_ends_as_stopped_with_a_checkpoint_and_the_process_takes_the_next_attempt()
    {
        var inbox = new Inbox();
        using var host = Started(inbox);
        inbox.Next<WorkerProcessReady>();
        host.Run(Trial(iterationMs: 10));
        inbox.Next<TestPointReported>();
        host.Stop("id-a", 1);
        var stopped = (TrialEnded)inbox.UntilEnded()[^1];

        Assert.Equal(TrialEndKind.Stopped, stopped.Kind);
        Assert.True(File.Exists(stopped.CheckpointPath), stopped.CheckpointPath);
        host.Run(Trial(attempt: 2, resumeFrom: stopped.CheckpointPath));
        var resumed = inbox.UntilEnded();
        Assert.True(resumed.OfType<TestPointReported>().First().Metrics.Iteration > 0, "the next attempt continued from the checkpoint, not from scratch");
        Assert.Equal(TrialEndKind.Completed, ((TrialEnded)resumed[^1]).Kind);
    }

    [Fact]
    public void A_worker_process_that_dies_ends_its_attempt_with_the_cause_and_a_new_process_is_started()
    {
        var inbox = new Inbox();
        using var host = Started(inbox);
        var first = inbox.Next<WorkerProcessReady>();
        host.Run(Trial(synthetic: new SyntheticSpec(IterationMs: 1, Faults: [new SyntheticFault("trial-a", 120, FaultKind.Crash, [1])])));
        var lost = (TrialEnded)inbox.UntilEnded()[^1];
        var second = inbox.Next<WorkerProcessReady>();

        Assert.Equal((TrialEndKind.Failed, 100), (lost.Kind, lost.Iteration));
        Assert.Equal($"worker process {first.ProcessId} exited with signal 9 (SIGKILL) after iteration 100", lost.Reason);
        Assert.NotEqual(first.ProcessId, second.ProcessId);
        host.Run(Trial(attempt: 2));
        Assert.Equal(TrialEndKind.Completed, ((TrialEnded)inbox.UntilEnded()[^1]).Kind);
    }

    [Theory]
    [InlineData(137, "signal 9 (SIGKILL)")]
    [InlineData(134, "signal 6 (SIGABRT)")]
    [InlineData(1, "exit code 1")]
    [InlineData(0, "exit code 0")]
    [InlineData(255, "exit code 255")]
    [InlineData(131, "exit code 131")]
    public void An_exit_is_described_as_the_signal_that_ended_the_process_or_its_code(int exitCode, string expected) =>
        Assert.Equal(expected, WorkerProcessSlot.DescribeExit(exitCode));

    [Fact]
    public void Worker_process_arguments_read_back_as_written_and_anything_else_is_one_line()
    {
        var parsed = WorkerProcessArguments.Parse([.. WorkerProcessArguments.Of(slot, selfTest: true)], out var problem);
        Assert.Equal((slot, true), parsed);
        Assert.Null(problem);
        Assert.Null(WorkerProcessArguments.Parse(["--worker-id", "w", "--node", "n", "--device", "cpu", "--threads", "0"], out problem));
        Assert.Equal("--threads: expected a positive integer", problem);
        Assert.Null(WorkerProcessArguments.Parse(["--bogus"], out problem));
        Assert.Equal("unknown argument '--bogus'", problem);
    }

    [Theory]
    [InlineData("--help", 0, "usage: Sweep.GpuWorker --worker-id ID", "")]
    [InlineData("--bogus", 2, "", "Sweep.GpuWorker: unknown argument '--bogus'")]
    public async Task The_worker_program_run_by_hand_says_what_it_is_or_what_is_wrong_in_one_line(string argument, int exitCode, string stdout, string stderr)
    {
        var info = WorkerProcessSlot.StartInfo(slot, selfTest: false);
        info.ArgumentList.Clear();
        if (Path.GetFileNameWithoutExtension(info.FileName) == "dotnet") info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Sweep.GpuWorker.dll"));
        info.ArgumentList.Add(argument);
        using var process = System.Diagnostics.Process.Start(info)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(exitCode, process.ExitCode);
        if (stdout.Length > 0) Assert.Contains(stdout, await output);
        else Assert.Equal("", await output);
        Assert.Equal(stderr, error.Trim());
    }

    [Fact]
    public void A_message_crosses_the_pipe_as_one_line_and_any_other_line_is_no_message()
    {
        var progressed = new TestPointReported("id-a", 2, new TrialMetrics(100, double.NaN, 0.5, double.PositiveInfinity, 0.25, 0.01, 1.5, 123));
        var line = SweepSerializer.ToLine(progressed);

        Assert.DoesNotContain('\n', line);
        Assert.Equal(SweepSerializer.ToLine(progressed), SweepSerializer.ToLine(SweepSerializer.FromLine(line)!));
        Assert.IsType<TestPointReported>(SweepSerializer.FromLine(line));
        Assert.Null(SweepSerializer.FromLine("Warning: something a library printed"));
        Assert.Null(SweepSerializer.FromLine("trial-progressed.v1 {not json"));
        Assert.Null(SweepSerializer.FromLine("no-such-manifest.v1 {}"));
        Assert.Null(SweepSerializer.FromLine(""));
    }
}
