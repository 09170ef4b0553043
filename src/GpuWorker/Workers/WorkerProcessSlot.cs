using System.Diagnostics;
using System.Globalization;
using Akka.Event;
using Sweep.GpuWorker.Logging;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Serialization;

namespace Sweep.GpuWorker.Workers;

/// <summary>
/// A slot whose trials train in a worker process of its own (<c>Sweep.GpuWorker</c>, the only kind
/// of process that loads LibTorch), started ahead and reused for one attempt after another. The
/// process runs the slot's self-test first and says <see cref="WorkerProcessReady"/>; messages go
/// both ways as lines on its standard input and output (<see cref="SweepSerializer.ToLine"/>); its
/// standard error is its log.
/// </summary>
/// <remarks>
/// Supervision: when the process dies (kill -9, a native abort, the out-of-memory killer, the
/// synthetic <c>crash</c> fault), the attempt it was running ends at once as Failed, "worker process
/// 4711 exited with signal 9 (SIGKILL) after iteration 340" (the last test point it reported), which the sweep's retry policy re-queues
/// from its last checkpoint, and a new process is started after a back-off of 1, 2, 4, … up to 30 s
/// (back to 1 s once a process has ended an attempt itself). A process exits by itself when this one
/// goes: it sees its standard input close, or its parent change.
/// </remarks>
public sealed class WorkerProcessSlot : ISlotHost
{
    /// <summary>The longest wait between two starts of a slot's process that keeps dying.</summary>
    public static readonly TimeSpan MaxRestartDelay = TimeSpan.FromSeconds(30);

    private readonly WorkerSlot slot;
    private readonly bool selfTest;
    private readonly object gate = new();

    /// <summary>Who hears the slot's news (its actor), once attached; before that, the news waits in <see cref="early"/>.</summary>
    private (Action<ISweepMessage> Deliver, ILoggingAdapter Log)? listener;
    private readonly Queue<Action<Action<ISweepMessage>, ILoggingAdapter>> early = new();
    private Process? process;
    private bool ready;
    private bool disposed;
    private RunTrial? running;
    private bool runSent;
    private int lastIteration;
    private int restarts;
    /// <summary>The first and the latest line the current process wrote to its standard error: the first says why a process never came up, the latest why a running one died.</summary>
    private string? firstError, lastError;
    private bool everReady;
    private bool everStarted;

    /// <param name="slot">The slot: its id, device and LibTorch thread count are the process's.</param>
    /// <param name="selfTest">Whether the process runs the known-answer self-test of its device first (slots that may train LeNet); otherwise it is <see cref="SlotHealth.NotNeeded"/>.</param>
    public WorkerProcessSlot(WorkerSlot slot, bool selfTest)
    {
        this.slot = slot;
        this.selfTest = selfTest;
    }

    /// <summary>
    /// Starts the worker process ahead of its actor (`sweep run` does, while its actor system starts
    /// and the journal is read): what it says meanwhile waits for <see cref="Start"/>.
    /// </summary>
    public WorkerProcessSlot StartAhead()
    {
        Launch();
        return this;
    }

    public void Start(Action<ISweepMessage> deliver, ILoggingAdapter log)
    {
        bool launched;
        List<Action<Action<ISweepMessage>, ILoggingAdapter>> waiting;
        lock (gate)
        {
            listener = (deliver, log);
            waiting = [.. early];
            early.Clear();
            launched = process is not null || everStarted;
        }
        foreach (var news in waiting) news(deliver, log);
        if (!launched) Launch();
    }

    private void Tell(Action<Action<ISweepMessage>, ILoggingAdapter> news)
    {
        (Action<ISweepMessage> Deliver, ILoggingAdapter Log) to;
        lock (gate)
        {
            if (listener is null)
            {
                early.Enqueue(news);
                return;
            }
            to = listener.Value;
        }
        news(to.Deliver, to.Log);
    }

    private void Deliver(ISweepMessage message) => Tell((deliver, _) => deliver(message));

    private void Info(string line) => Tell((_, log) => log.Info(line));

    private void Warning(string line) => Tell((_, log) => log.Warning(line));

    /// <summary>
    /// The file a worker process is started from, next to this program: <c>Sweep.GpuWorker.dll</c>
    /// when this process runs under the <c>dotnet</c> host (it runs the worker the same way), else the
    /// <c>Sweep.GpuWorker</c> program (its apphost).
    /// </summary>
    public static string ProgramFile =>
        Path.Combine(AppContext.BaseDirectory, UnderDotnetHost(out _) ? "Sweep.GpuWorker.dll" : "Sweep.GpuWorker");

    private static bool UnderDotnetHost(out string host)
    {
        host = Environment.ProcessPath ?? "";
        return Path.GetFileNameWithoutExtension(host) == "dotnet";
    }

    /// <summary>
    /// The command that starts a worker process for <paramref name="slot"/>: the <c>Sweep.GpuWorker</c>
    /// program next to this one, through the same <c>dotnet</c> host when this process runs under one.
    /// </summary>
    public static ProcessStartInfo StartInfo(WorkerSlot slot, bool selfTest)
    {
        var info = UnderDotnetHost(out var host)
            ? new ProcessStartInfo(host) { ArgumentList = { ProgramFile } }
            : new ProcessStartInfo(ProgramFile);
        foreach (var argument in WorkerProcessArguments.Of(slot, selfTest)) info.ArgumentList.Add(argument);
        info.RedirectStandardInput = true;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        return info;
    }

    private void Launch()
    {
        Process started;
        lock (gate)
        {
            if (disposed) return;
            ready = false;
            everStarted = true;
            firstError = lastError = null;
            started = new Process { StartInfo = StartInfo(slot, selfTest) };
            started.ErrorDataReceived += (_, line) =>
            {
                if (string.IsNullOrWhiteSpace(line.Data)) return;
                lock (gate)
                {
                    firstError ??= line.Data;
                    lastError = line.Data;
                }
                Info($"worker process of {slot.WorkerId}: {line.Data}");
            };
            try
            {
                started.Start();
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                var cause = $"cannot start {started.StartInfo.FileName}: {e.Message}";
                started.Dispose();
                process = null;
                ScheduleRestart(null, cause);
                return;
            }
            process = started;
            started.BeginErrorReadLine();
        }
        var reader = new Thread(() => Read(started)) { IsBackground = true, Name = $"worker-process {slot.WorkerId}" };
        reader.Start();
    }

    /// <summary>Reads the process's lines until it closes its output, then handles its exit.</summary>
    private void Read(Process from)
    {
        string? line;
        while ((line = ReadLine(from)) is not null)
        {
            if (SweepSerializer.FromLine(line) is not { } message)
            {
                Info($"worker process of {slot.WorkerId}: {line}");
                continue;
            }
            Receive(message);
        }
        from.WaitForExit();
        Exited(from);
    }

    private static string? ReadLine(Process from)
    {
        try
        {
            return from.StandardOutput.ReadLine();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            return null;
        }
    }

    private void Receive(ISweepMessage message)
    {
        if (message is TrialLogLine line)
        {
            // Logged here, with the trial's properties; not a report for the coordinator.
            RunTrial? of;
            lock (gate) of = Is(line.TrialId, line.Attempt) ? running : null;
            if (of is not null) Tell((_, log) => Runners.CommandLog.Write(line, of, log, slot.Node, slot.WorkerId));
            else Info($"worker process of {slot.WorkerId}: trial {line.TrialId} attempt {line.Attempt}: {line.Text}");
            return;
        }
        RunTrial? toSend = null;
        lock (gate)
        {
            switch (message)
            {
                case WorkerProcessReady:
                    ready = true;
                    everReady = true;
                    if (running is not null && !runSent) toSend = running;
                    break;
                case TestPointReported progressed when Is(progressed.TrialId, progressed.Attempt):
                    lastIteration = progressed.Metrics.Iteration;
                    break;
                case TrialEnded ended when Is(ended.TrialId, ended.Attempt):
                    running = null;
                    restarts = 0;
                    break;
            }
        }
        Deliver(message);
        if (toSend is not null) Send(toSend);
    }

    private bool Is(string trialId, int attempt) => running is { } trial && trial.Trial.Id == trialId && trial.Attempt == attempt;

    /// <summary>The process is gone: the attempt it ran ends as Failed, with the cause, and a new process starts after the back-off.</summary>
    private void Exited(Process from)
    {
        RunTrial? lost;
        int iteration;
        string cause;
        lock (gate)
        {
            if (!ReferenceEquals(process, from)) return;
            // A worker process killed with -9 could not end what it started: its group (a command trial's program) ends now.
            ProcessGroups.KillGroup(from.Id);
            process = null;
            ready = false;
            cause = $"worker process {from.Id} exited with {DescribeExit(from.ExitCode)}";
            lost = runSent ? running : null;
            iteration = lastIteration;
            if (lost is not null) running = null;
            runSent = false;
            from.Dispose();
            if (disposed) return;
        }
        if (lost is not null)
        {
            var reason = $"{cause} after iteration {iteration}";
            // In the trial's own log too (`sweep logs ID --trial NAME`).
            Tell((_, log) => log.ForTrial(lost.SweepId, lost.Trial.Id, lost.Trial.Name, lost.Attempt, slot.Node, slot.WorkerId)
                .Warning("Worker {Worker}: {Reason} of {TrialName} attempt {Attempt}", slot.WorkerId, reason, lost.Trial.Name, lost.Attempt));
            Deliver(new TrialEnded(lost.Trial.Id, lost.Attempt, TrialEndKind.Failed, iteration, reason, null));
        }
        ScheduleRestart(lost, cause);
    }

    private void ScheduleRestart(RunTrial? lost, string cause)
    {
        TimeSpan delay;
        bool firstVerdict;
        string? said;
        lock (gate)
        {
            if (disposed) return;
            delay = TimeSpan.FromSeconds(Math.Min(MaxRestartDelay.TotalSeconds, Math.Pow(2, restarts)));
            restarts++;
            firstVerdict = !everReady && restarts == 1;
            said = ready || everReady ? lastError : firstError;
        }
        var why = said is null ? cause : $"{cause} ({said})";
        if (lost is null) Warning($"worker {slot.WorkerId}: {why}; starting it again in {delay.TotalSeconds:0} s");
        else Info($"worker {slot.WorkerId}: starting its worker process again in {delay.TotalSeconds:0} s");
        // A process that never came up gives the slot its verdict, so a sweep never waits for it.
        if (firstVerdict) Deliver(new WorkerProcessReady(0, new SlotHealth(false, $"its worker process did not start: {why}")));
        Task.Delay(delay).ContinueWith(_ => Launch(), TaskScheduler.Default);
    }

    /// <summary>
    /// "signal 9 (SIGKILL)" for a process one of the signals that end processes from outside or on a
    /// native fault ended (.NET reports those as 128 + the signal: SIGINT, SIGABRT, SIGBUS, SIGKILL,
    /// SIGSEGV, SIGTERM), else "exit code N" (a program's own code above 128, such as the .NET host's
    /// 131 when it cannot start, is not taken for a signal).
    /// </summary>
    public static string DescribeExit(int exitCode)
    {
        string? name = (exitCode - 128) switch { 2 => "SIGINT", 6 => "SIGABRT", 7 => "SIGBUS", 9 => "SIGKILL", 11 => "SIGSEGV", 15 => "SIGTERM", _ => null };
        return name is null
            ? string.Create(CultureInfo.InvariantCulture, $"exit code {exitCode}")
            : string.Create(CultureInfo.InvariantCulture, $"signal {exitCode - 128} ({name})");
    }

    public void Run(RunTrial trial)
    {
        bool sendNow;
        lock (gate)
        {
            running = trial;
            runSent = false;
            lastIteration = Training.CheckpointFiles.IterationOf(trial.CheckpointPath, trial.ResumeFrom ?? "") ?? 0;
            sendNow = ready;
        }
        if (sendNow) Send(trial);
    }

    private void Send(RunTrial trial)
    {
        lock (gate)
        {
            if (!ReferenceEquals(running, trial) || runSent) return;
            runSent = Write(SweepSerializer.ToLine(trial));
        }
    }

    public void Stop(string trialId, int attempt)
    {
        RunTrial? unsent = null;
        lock (gate)
        {
            if (!Is(trialId, attempt)) return;
            if (runSent) Write(SweepSerializer.ToLine(new StopTrial(trialId, attempt, true)));
            else
            {
                unsent = running;
                running = null;
            }
        }
        // Never given to a process (it was starting): stopped where it stood.
        if (unsent is not null) Deliver(new TrialEnded(trialId, attempt, TrialEndKind.Stopped, lastIteration, null, unsent.ResumeFrom));
    }

    private bool Write(string line)
    {
        try
        {
            process!.StandardInput.WriteLine(line);
            process.StandardInput.Flush();
            return true;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or NullReferenceException)
        {
            return false;
        }
    }

    /// <summary>Closes the process's input, so it stops its attempt (with a checkpoint) and exits; killed if still there after 5 s.</summary>
    public void Dispose()
    {
        Process? closing;
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            closing = process;
            try
            {
                closing?.StandardInput.Close();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
            }
        }
        if (closing is null) return;
        Task.Run(() =>
        {
            try
            {
                if (!closing.WaitForExit(5000)) closing.Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
            }
        });
    }
}

/// <summary>The command-line arguments of a worker process: what <see cref="WorkerProcessSlot"/> writes and the worker process reads.</summary>
public static class WorkerProcessArguments
{
    /// <summary><c>--worker-id ID --node NODE --device DEVICE --threads N [--self-test]</c>.</summary>
    public static IEnumerable<string> Of(WorkerSlot slot, bool selfTest)
    {
        string[] arguments = ["--worker-id", slot.WorkerId, "--node", slot.Node, "--device", slot.Device, "--threads", slot.Threads.ToString(CultureInfo.InvariantCulture)];
        return selfTest ? [.. arguments, "--self-test"] : arguments;
    }

    /// <summary>The slot and whether to self-test, from <paramref name="args"/>; null with a one-line problem for anything else.</summary>
    public static (WorkerSlot Slot, bool SelfTest)? Parse(string[] args, out string? problem)
    {
        string? id = null, node = null, device = null;
        int threads = 0;
        bool selfTest = false;
        problem = null;
        for (int i = 0; i < args.Length; i++)
        {
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--worker-id": id = Value(); break;
                case "--node": node = Value(); break;
                case "--device": device = Value(); break;
                case "--threads":
                    if (!int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out threads) || threads < 1) problem = "--threads: expected a positive integer";
                    break;
                case "--self-test": selfTest = true; break;
                default: problem = $"unknown argument '{args[i]}'"; break;
            }
        }
        if (problem is null && (id is null || node is null || device is null || threads < 1)) problem = "expected --worker-id ID --node NODE --device DEVICE --threads N [--self-test]";
        return problem is null ? (new WorkerSlot(id!, node!, device!, threads), selfTest) : null;
    }
}
