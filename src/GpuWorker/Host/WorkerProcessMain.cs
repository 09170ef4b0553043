using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Sweep.GpuWorker.Runners;
using Sweep.GpuWorker.Workers;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Serialization;

namespace Sweep.GpuWorker.Host;

/// <summary>
/// The worker process: one slot's trials, one attempt at a time, started and supervised by that
/// slot's <see cref="TrialWorker"/> (through <see cref="WorkerProcessSlot"/>). The only kind of
/// process that loads LibTorch. It runs the slot's self-test, says <see cref="WorkerProcessReady"/>,
/// then reads <see cref="RunTrial"/> and <see cref="StopTrial"/> lines on its standard input and
/// writes each attempt's reports and end on its standard output (<see cref="SweepSerializer.ToLine"/>).
/// Anything else it prints goes to standard error, its log. It exits when its input closes (its
/// agent stopped it, or died) or its parent process changes (the parent was killed), stopping the
/// running attempt with a checkpoint for at most <see cref="StopGrace"/> first. SIGINT and SIGTERM
/// are left to the agent: a terminal's Ctrl+C reaches the whole process group.
/// </summary>
public static class WorkerProcessMain
{
    /// <summary>How long a worker process whose agent went away lets its attempt write a checkpoint before it exits.</summary>
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(3);

    private static readonly object Output = new();

    /// <summary>The attempt being trained, or null when the process is free.</summary>
    private static Running? busy;

    private sealed record Running(RunTrial Trial, CancellationTokenSource Cancellation);
    private static TextWriter protocol = TextWriter.Null;

    /// <summary>What --help prints: what the program is for, and its arguments.</summary>
    public const string Usage = """
        Sweep.GpuWorker: the worker process of one slot (one CUDA device, or CPU threads). `sweep run`,
        `sweep resume` and `sweep worker` start one per slot and talk to it on standard input and output;
        it is not meant to be run by hand (to train one trial alone, use `sweep train`).
        usage: Sweep.GpuWorker --worker-id ID --node NODE --device cpu|cuda:N --threads N [--self-test]
        """;

    /// <summary>Exit codes: 0 when its input closed or its parent went (or after --help), 2 for bad arguments.</summary>
    public static int Run(string[] args)
    {
        if (args is ["--help"] or ["-h"] or ["-?"])
        {
            Console.WriteLine(Usage);
            return 0;
        }
        if (WorkerProcessArguments.Parse(args, out var problem) is not { } parsed)
        {
            Console.Error.WriteLine($"Sweep.GpuWorker: {problem}");
            return 2;
        }
        var (slot, selfTest) = parsed;
        protocol = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
        // Whatever else writes to "standard output" (a library, a stray Console.WriteLine) lands in the log, never in the protocol.
        Console.SetOut(Console.Error);
        // Its own process group: the programs of command trials join it, and end with it (ProcessGroups).
        WatchParent(leadsGroup: ProcessGroups.LeadOwnGroup());
        // Ctrl+C in a terminal (SIGINT) and a service manager's stop (SIGTERM) may reach this process
        // too (where it could not lead a group of its own, or when sent to it): the agent decides (it stops the attempt with a checkpoint first),
        // and a process whose agent is gone exits by itself.
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => context.Cancel = true);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => context.Cancel = true);

        var health = selfTest
            ? SlotSelfTest.Verdict(TrialWorker.DeviceSelfTest(slot), slot.Device)
            : SlotHealth.NotNeeded;
        Write(new WorkerProcessReady(Environment.ProcessId, health));

        // One training thread for the life of the process, so LibTorch's per-thread state is set up once.
        using var attempts = new BlockingCollection<(RunTrial Trial, CancellationTokenSource Cancellation)>();
        var trainer = new Thread(() =>
        {
            foreach (var (trial, cancellation) in attempts.GetConsumingEnumerable())
            {
                // A command trial's log, and a plug-in's, go to the agent, which logs them with the trial's properties.
                var runner = trial.Model switch
                {
                    ModelKind.Command => new CommandRunner(CommandLog.ToAgent(Write)),
                    ModelKind.Plugin => new PluginRunner(log: PluginRunner.LogTo(CommandLog.ToAgent(Write))),
                    _ => TrialWorker.DefaultRunners(trial.Model),
                };
                var ended = AttemptRun.Run(runner, trial, InThreadSlot.TrainingOptionsOf(slot, trial), Write, cancellation.Token);
                // Free before the end is told: the agent may send the next attempt the moment it reads it.
                Volatile.Write(ref busy, null);
                Write(ended);
            }
        })
        { IsBackground = true, Name = "training" };
        trainer.Start();

        string? line;
        while ((line = Console.In.ReadLine()) is not null)
        {
            var current = Volatile.Read(ref busy);
            switch (SweepSerializer.FromLine(line))
            {
                case RunTrial trial when current is not null:
                    Write(new TrialEnded(trial.Trial.Id, trial.Attempt, TrialEndKind.Failed, 0, $"worker {slot.WorkerId} was busy with {current.Trial.Trial.Name}", null));
                    break;
                case RunTrial trial when !health.Healthy:
                    Write(new TrialEnded(trial.Trial.Id, trial.Attempt, TrialEndKind.Failed, 0, $"worker {slot.WorkerId} takes no trials: {health.Summary}", null));
                    break;
                case RunTrial trial:
                    var attempt = new Running(trial, new CancellationTokenSource());
                    Volatile.Write(ref busy, attempt);
                    attempts.Add((attempt.Trial, attempt.Cancellation));
                    break;
                case StopTrial stop when current is not null && current.Trial.Trial.Id == stop.TrialId && current.Trial.Attempt == stop.Attempt:
                    current.Cancellation.Cancel();
                    break;
                case StopTrial:
                    break;
                default:
                    Console.Error.WriteLine($"ignored a line that is no message for a worker process: {Shorten(line)}");
                    break;
            }
        }
        // The agent closed the input (or died): stop, with a checkpoint, briefly.
        attempts.CompleteAdding();
        Volatile.Read(ref busy)?.Cancellation.Cancel();
        trainer.Join(StopGrace);
        return 0;
    }

    private static void Write(ISweepMessage message)
    {
        var line = SweepSerializer.ToLine(message);
        lock (Output)
        {
            try
            {
                protocol.WriteLine(line);
            }
            catch (IOException)
            {
                // The agent is gone: nobody reads; the input's end stops this process.
            }
        }
    }

    /// <summary>
    /// A parent killed with -9 leaves this process to init (or a subreaper): then it exits, within
    /// half a second, and so does every process of its group (a command trial's program) when it leads one.
    /// </summary>
    private static void WatchParent(bool leadsGroup)
    {
        if (!OperatingSystem.IsLinux()) return;
        int parent = getppid();
        var watcher = new Thread(() =>
        {
            while (getppid() == parent) Thread.Sleep(500);
            Console.Error.WriteLine($"parent process {parent} is gone: exiting");
            if (leadsGroup) ProcessGroups.KillGroup(Environment.ProcessId);
            Environment.Exit(0);
        })
        { IsBackground = true, Name = "parent watch" };
        watcher.Start();
    }

    private static string Shorten(string line) => line.Length <= 200 ? line : line[..200] + "…";

    [DllImport("libc", SetLastError = false)]
    private static extern int getppid();
}
