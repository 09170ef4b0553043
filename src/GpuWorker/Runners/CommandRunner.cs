using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Sweep.GpuWorker.Training;
using Sweep.Protocol;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Runners;

/// <summary>
/// Runs a command trial (<c>model = command</c>): the user's program, once per attempt, as
/// docs/command-trials.md describes. Its arguments get the trial's parameters
/// (<see cref="Arguments"/>); it runs in a fresh working directory per attempt, with every
/// parameter, the trial, the attempt and a checkpoint directory (the same for every attempt) in its
/// environment; it reports test points and checkpoints as JSON lines on standard output; every other
/// line, and standard error, goes to the trial's log (<see cref="ICommandLog"/>).
/// </summary>
/// <remarks>
/// <para>Ends: exit code 0 is Completed at the last reported iteration. A NaN or infinite metric
/// stops the program and is Diverged at that test point (which is not reported). Any other exit
/// code, or a signal, throws <see cref="CommandFailedException"/> (with the last line of standard
/// error), or <see cref="TrialOutOfMemoryException"/> when a line of standard error matched
/// <see cref="CommandSpec.OutOfMemoryPattern"/>. Cancellation sends SIGTERM to the program and its
/// descendants, then SIGKILL after <see cref="CommandSpec.GraceSeconds"/>, and is Cancelled
/// (with the checkpoint directory when the program reported a checkpoint in this attempt).</para>
/// <para>It never touches TorchSharp: the program computes whatever it computes, so
/// <see cref="TrainingOptions.Threads"/> and <see cref="TrainingOptions.Device"/> are only passed
/// on (SWEEP_THREADS, SWEEP_DEVICE).</para>
/// </remarks>
/// <param name="log">Where the program's log lines go (default: <see cref="CommandLog.StandardError"/>, a worker process's log).</param>
public sealed class CommandRunner(ICommandLog? log = null) : ITrialRunner
{
    /// <summary>How long the runner still reads a program's output once it has exited: descendants that keep its pipes open are killed after this.</summary>
    public static readonly TimeSpan DrainAfterExit = TimeSpan.FromSeconds(2);

    private readonly ICommandLog log = log ?? CommandLog.StandardError;

    /// <summary>
    /// Runs one attempt of <paramref name="trial"/> to its end on the calling thread (see the class remarks for how it ends).
    /// </summary>
    /// <param name="trial">The attempt; its <see cref="RunTrial.Command"/> is required.</param>
    /// <param name="options">
    /// <see cref="TrainingOptions.CheckpointPath"/> (<c>DIR/TRIAL.ckpt</c>; <see cref="RunTrial.CheckpointPath"/> when null)
    /// places the trial's folder <c>DIR/TRIAL/</c>; <see cref="TrainingOptions.ResumeFrom"/>, when set, is given to the program as SWEEP_RESUME_FROM.
    /// </param>
    /// <param name="observer">Hears each test point and checkpoint, on the calling thread.</param>
    /// <param name="cancellation">Stops the program: SIGTERM, then SIGKILL after the grace period.</param>
    /// <returns>Completed, Diverged or Cancelled, with every test point reported.</returns>
    /// <exception cref="InvalidOperationException">The trial has no <see cref="RunTrial.Command"/>.</exception>
    /// <exception cref="InvalidInputException">An argument has an unknown placeholder, or the out-of-memory pattern is no regular expression.</exception>
    /// <exception cref="CommandFailedException">The program cannot be started, exited with another code than 0, or was killed by a signal.</exception>
    /// <exception cref="TrialOutOfMemoryException">It failed after a line of standard error matched the out-of-memory pattern.</exception>
    public TrainingResult Run(RunTrial trial, TrainingOptions options, ITrainingObserver observer, CancellationToken cancellation)
    {
        var command = trial.Command
            ?? throw new InvalidOperationException($"trial {trial.Trial.Name} ({trial.Trial.Id}) is run as a command trial but has no command");
        var arguments = Arguments(command, trial.Trial.Spec);
        var outOfMemory = OutOfMemory(command.OutOfMemoryPattern);
        var directories = CommandDirectories.Of(trial, options);
        using var session = new Session(trial, command, options, observer, log, arguments, outOfMemory, directories);
        return session.Run(cancellation);
    }

    /// <summary>
    /// The program and its arguments for a trial: <c>${KEY}</c> is replaced by the trial's parameter
    /// KEY (<see cref="CommandParameters.Of"/>, e.g. <c>${base-lr}</c> → <c>0.01</c>) and
    /// <c>${spec-dir}</c> by <see cref="CommandSpec.SpecDirectory"/>, anywhere in an argument.
    /// </summary>
    /// <param name="command">The command, with its placeholders.</param>
    /// <param name="spec">The trial whose parameters fill them.</param>
    /// <returns>The arguments, the program first; as many as <see cref="CommandSpec.Arguments"/>.</returns>
    /// <exception cref="InvalidInputException">There are no arguments, or one has a placeholder that is neither a parameter nor <c>spec-dir</c> (the message names it and lists the known ones).</exception>
    public static IReadOnlyList<string> Arguments(CommandSpec command, TrialSpec spec)
    {
        if (command.Arguments.Count == 0 || string.IsNullOrEmpty(command.Arguments[0]))
            throw new InvalidInputException("command: arguments must name a program first, e.g. [\"python3\", \"${spec-dir}/train.py\"]");
        var values = CommandParameters.Of(spec).ToDictionary(pair => pair.Key, pair => pair.Value, StringComparer.Ordinal);
        values[CommandSpec.SpecDirectoryPlaceholder] = command.SpecDirectory;
        return command.Arguments
            .Select(argument => CommandSpec.Placeholder.Replace(argument, match =>
                values.TryGetValue(match.Groups[1].Value, out var value)
                    ? value
                    : throw new InvalidInputException($"command argument '{argument}': {CommandSpec.UnknownPlaceholderProblem(match.Groups[1].Value, spec.Parameters?.Items.Select(p => p.Name))}")))
            .ToList();
    }

    /// <summary>The out-of-memory pattern, or null when it is empty (no line is an out-of-memory one).</summary>
    private static Regex? OutOfMemory(string pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern)) return null;
        try
        {
            return new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException($"command: out-of-memory-pattern '{pattern}' is not a regular expression: {e.Message}", e);
        }
    }

    /// <summary>What ended the wait for the program's output.</summary>
    private enum Stopping
    {
        No,
        Cancelled,
        Diverged,
    }

    /// <summary>One attempt's program, from its start to its end.</summary>
    private sealed class Session : IDisposable
    {
        /// <summary>How often the program's memory is sampled (and its exit looked at) while it writes nothing.</summary>
        private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

        private readonly RunTrial trial;
        private readonly CommandSpec command;
        private readonly TrainingOptions options;
        private readonly ITrainingObserver observer;
        private readonly ICommandLog log;
        private readonly IReadOnlyList<string> arguments;
        private readonly Regex? outOfMemory;
        private readonly CommandDirectories directories;

        /// <summary>Both streams' lines, in the order they were read; null marks a stream's end.</summary>
        private readonly BlockingCollection<(CommandStream Stream, string? Line)> lines = new();
        private readonly List<TrialMetrics> metrics = [];
        private readonly Stopwatch sinceTestPoint = new();
        private readonly Stopwatch sinceSample = new();
        private Process? process;
        private int openStreams = 2;
        private int iteration;
        private bool checkpointed;
        private long peakBytes;
        private IReadOnlyList<ProcessTree.Member> tree = [];
        private string? lastError;
        private string? outOfMemoryLine;

        public Session(RunTrial trial, CommandSpec command, TrainingOptions options, ITrainingObserver observer, ICommandLog log,
            IReadOnlyList<string> arguments, Regex? outOfMemory, CommandDirectories directories)
        {
            this.trial = trial;
            this.command = command;
            this.options = options;
            this.observer = observer;
            this.log = log;
            this.arguments = arguments;
            this.outOfMemory = outOfMemory;
            this.directories = directories;
        }

        public TrainingResult Run(CancellationToken cancellation)
        {
            var running = Start();
            try
            {
                var stopping = Follow(running, cancellation, out var divergence);
                if (stopping != Stopping.No)
                {
                    Stop(running, stopping);
                    running.WaitForExit();
                    Drain(stopping);
                }
                running.WaitForExit();
                return stopping switch
                {
                    Stopping.Cancelled => new TrainingResult(TrialOutcome.Cancelled, iteration, metrics, null, checkpointed ? directories.Checkpoint : null),
                    Stopping.Diverged => new TrainingResult(TrialOutcome.Diverged, divergence!.Iteration, metrics, divergence, null),
                    _ => Exited(running.ExitCode),
                };
            }
            finally
            {
                KillLeftovers();
            }
        }

        private Process Start()
        {
            directories.Prepare(fromScratch: options.ResumeFrom is null);
            var info = new ProcessStartInfo(arguments[0])
            {
                UseShellExecute = false,
                WorkingDirectory = directories.Work,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                StandardOutputEncoding = Encoding.UTF8,
                StandardErrorEncoding = Encoding.UTF8,
            };
            foreach (var argument in arguments.Skip(1)) info.ArgumentList.Add(argument);
            foreach (var (name, value) in Environment()) info.Environment[name] = value;
            if (ResumeFrom() is null) info.Environment.Remove("SWEEP_RESUME_FROM");

            log.Note(trial, $"runs {string.Join(' ', arguments.Select(Quote))} in {directories.Work}", warning: false);
            var started = new Process { StartInfo = info };
            try
            {
                started.Start();
            }
            catch (Exception e) when (e is Win32Exception or InvalidOperationException or IOException)
            {
                started.Dispose();
                throw new CommandFailedException($"cannot start {arguments[0]}: {e.Message}", null, e);
            }
            process = started;
            sinceTestPoint.Start();
            sinceSample.Start();
            // Nothing is ever written to the program: its standard input is at its end from the start.
            started.StandardInput.Close();
            Read(started.StandardOutput, CommandStream.Output);
            Read(started.StandardError, CommandStream.Error);
            Sample(started);
            return started;
        }

        /// <summary>The program's environment on top of this process's: the parameters, the trial, the directories.</summary>
        private IEnumerable<(string Name, string Value)> Environment()
        {
            foreach (var (key, value) in CommandParameters.Of(trial.Trial.Spec)) yield return (CommandParameters.EnvironmentVariable(key), value);
            yield return ("SWEEP_SWEEP_ID", trial.SweepId);
            yield return ("SWEEP_TRIAL_ID", trial.Trial.Id);
            yield return ("SWEEP_TRIAL_NAME", trial.Trial.Name);
            yield return ("SWEEP_ATTEMPT", trial.Attempt.ToString(CultureInfo.InvariantCulture));
            yield return ("SWEEP_CHECKPOINT_DIR", directories.Checkpoint);
            yield return ("SWEEP_DEVICE", options.Device);
            yield return ("SWEEP_THREADS", options.Threads.ToString(CultureInfo.InvariantCulture));
            if (ResumeFrom() is { } resume) yield return ("SWEEP_RESUME_FROM", resume);
            // Python buffers a pipe's output in blocks: unbuffered, each test point arrives as it is printed.
            yield return ("PYTHONUNBUFFERED", "1");
        }

        /// <summary>The checkpoint the journal gave this attempt, else the checkpoint directory when an earlier attempt left something in it.</summary>
        /// <summary>The checkpoint the coordinator recorded (the folder), or null: the attempt starts from scratch, in an emptied folder.</summary>
        private string? ResumeFrom() => options.ResumeFrom;

        private void Read(StreamReader reader, CommandStream stream)
        {
            var thread = new Thread(() =>
            {
                try
                {
                    string? line;
                    while ((line = reader.ReadLine()) is not null) lines.Add((stream, line));
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException)
                {
                }
                finally
                {
                    try
                    {
                        lines.Add((stream, null));
                    }
                    catch (InvalidOperationException)
                    {
                        // The session is over: nobody reads any more.
                    }
                }
            })
            { IsBackground = true, Name = $"command {CommandLog.StreamName(stream)} {trial.Trial.Name}" };
            thread.Start();
        }

        /// <summary>
        /// Handles the program's lines until both its streams end (or it has exited and descendants
        /// keep them open for longer than <see cref="DrainAfterExit"/>), the token fires while it
        /// runs, or a test point diverges.
        /// </summary>
        private Stopping Follow(Process running, CancellationToken cancellation, out DivergenceDetected? divergence)
        {
            divergence = null;
            Stopwatch? sinceExit = null;
            while (openStreams > 0)
            {
                bool exited = running.HasExited;
                if (cancellation.IsCancellationRequested && !exited) return Stopping.Cancelled;
                if (exited && (sinceExit ??= Stopwatch.StartNew()).Elapsed > DrainAfterExit) break;
                (CommandStream Stream, string? Line) next;
                bool got;
                try
                {
                    got = cancellation.IsCancellationRequested
                        ? lines.TryTake(out next, Poll)
                        : lines.TryTake(out next, (int)Poll.TotalMilliseconds, cancellation);
                }
                catch (OperationCanceledException)
                {
                    continue;
                }
                if (sinceSample.Elapsed >= Poll) Sample(running);
                if (!got) continue;
                divergence = Handle(next, Stopping.No);
                if (divergence is not null) return Stopping.Diverged;
            }
            return Stopping.No;
        }

        /// <summary>
        /// SIGTERM to the program and its descendants; their lines are still handled (after a
        /// cancellation a checkpoint or test point is still reported; after a divergence, only
        /// logged) until they are gone or the grace period is over, then SIGKILL to what is left.
        /// </summary>
        private void Stop(Process running, Stopping why)
        {
            var members = Members(running);
            var grace = TimeSpan.FromSeconds(Math.Max(0, command.GraceSeconds));
            log.Note(trial, why == Stopping.Cancelled ? "stopping the program (SIGTERM)" : "stopping the diverged program (SIGTERM)", warning: false);
            ProcessTree.Signal(members, ProcessTree.SIGTERM);
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < grace && !(running.HasExited && openStreams == 0 && !members.Any(ProcessTree.IsAlive)))
            {
                var wait = grace - clock.Elapsed;
                if (wait > Poll) wait = Poll;
                if (wait > TimeSpan.Zero && lines.TryTake(out var next, wait)) Handle(next, why);
            }
            int killed = 0;
            if (!running.HasExited)
            {
                try
                {
                    running.Kill(entireProcessTree: true);
                    killed++;
                }
                catch (Exception e) when (e is InvalidOperationException or Win32Exception)
                {
                    // It exited meanwhile.
                }
            }
            killed += ProcessTree.Signal(members, ProcessTree.SIGKILL);
            if (killed > 0)
                log.Note(trial, string.Create(CultureInfo.InvariantCulture, $"the program did not end within the grace period of {grace.TotalSeconds:0.###} s after SIGTERM: killed with SIGKILL"), warning: true);
        }

        /// <summary>Handles the lines still to come once a stopped program has exited: until both streams end, for at most <see cref="DrainAfterExit"/>.</summary>
        private void Drain(Stopping stopping)
        {
            var clock = Stopwatch.StartNew();
            while (openStreams > 0 && clock.Elapsed < DrainAfterExit)
            {
                if (lines.TryTake(out var next, Poll)) Handle(next, stopping);
            }
        }

        /// <summary>
        /// Handles one line. While running (<paramref name="stopping"/> is No) a test point with a
        /// non-finite metric returns its divergence, unreported; once stopping, such a test point is
        /// only logged, and after a divergence every line is.
        /// </summary>
        private DivergenceDetected? Handle((CommandStream Stream, string? Line) next, Stopping stopping)
        {
            var (stream, line) = next;
            if (line is null)
            {
                openStreams--;
                return null;
            }
            if (stream == CommandStream.Error)
            {
                if (!string.IsNullOrWhiteSpace(line))
                {
                    lastError = line;
                    if (outOfMemoryLine is null && IsOutOfMemory(line)) outOfMemoryLine = line;
                }
                log.Line(trial, stream, line);
                return null;
            }
            switch (stopping == Stopping.Diverged ? null : CommandOutput.Parse(line))
            {
                case TestPointReport point:
                    if (NonFinite(point) is { } divergence)
                    {
                        if (stopping == Stopping.No) return divergence;
                        log.Line(trial, stream, line);
                        return null;
                    }
                    Report(point);
                    return null;
                case CheckpointReport saved:
                    checkpointed = true;
                    observer.OnCheckpoint(saved.Iteration, directories.Checkpoint);
                    return null;
                default:
                    log.Line(trial, stream, line);
                    return null;
            }
        }

        private bool IsOutOfMemory(string line)
        {
            try
            {
                return outOfMemory?.IsMatch(line) == true;
            }
            catch (RegexMatchTimeoutException)
            {
                return false;
            }
        }

        private DivergenceDetected? NonFinite(TestPointReport point)
        {
            foreach (var key in CommandOutput.MetricKeys)
            {
                if (point.Metrics.TryGetValue(key, out var value) && !double.IsFinite(value))
                    return new DivergenceDetected(point.Iteration, value, $"{key} is {CommandOutput.Name(value)}");
            }
            return null;
        }

        private void Report(TestPointReport point)
        {
            if (process is { } running) Sample(running);
            double Metric(string key) => point.Metrics.TryGetValue(key, out var value) ? value : double.NaN;
            var entry = new TrialMetrics(
                point.Iteration,
                Metric(CommandOutput.TrainLoss),
                Metric(CommandOutput.TrainAccuracy),
                Metric(CommandOutput.TestLoss),
                Metric(CommandOutput.TestAccuracy),
                Metric(CommandOutput.LearningRate),
                sinceTestPoint.Elapsed.TotalSeconds,
                peakBytes);
            sinceTestPoint.Restart();
            iteration = point.Iteration;
            metrics.Add(entry);
            observer.OnMetrics(entry);
        }

        /// <summary>
        /// Samples the peak resident set of the program and its descendants (VmHWM, see
        /// <see cref="ProcessTree.PeakResidentBytes"/>) at each test point and every
        /// <see cref="Poll"/> while it runs: good enough for a figure per test point, though a
        /// descendant that comes and goes between two samples is missed.
        /// </summary>
        private void Sample(Process running)
        {
            sinceSample.Restart();
            var members = ProcessTree.Of(running.Id);
            if (members.Count == 0) return;
            tree = members;
            peakBytes = Math.Max(peakBytes, ProcessTree.PeakResidentBytes(members));
        }

        /// <summary>The program and its descendants now, with those seen at the last sample (descendants that outlived their parent).</summary>
        private List<ProcessTree.Member> Members(Process running) => ProcessTree.Of(running.Id).Union(tree).ToList();

        private TrainingResult Exited(int exitCode)
        {
            if (exitCode == 0) return new TrainingResult(TrialOutcome.Completed, iteration, metrics, null, checkpointed ? directories.Checkpoint : null);
            var how = DescribeExit(exitCode);
            if (outOfMemoryLine is not null) throw new TrialOutOfMemoryException($"{how} after out of memory: {outOfMemoryLine}");
            throw new CommandFailedException(lastError is null ? $"{how} (nothing on stderr)" : $"{how}; last line on stderr: {lastError}", exitCode);
        }

        /// <summary>Descendants still running once the attempt is over (a background job the program left) are killed: nothing of an attempt outlives it.</summary>
        private void KillLeftovers()
        {
            int killed = ProcessTree.Signal(tree, ProcessTree.SIGKILL);
            if (killed > 0) log.Note(trial, $"killed {killed} process(es) the program left running", warning: true);
        }

        public void Dispose()
        {
            lines.CompleteAdding();
            process?.Dispose();
        }

        private static string Quote(string argument) =>
            argument.Length > 0 && argument.All(c => char.IsLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? argument : "'" + argument.Replace("'", "'\\''") + "'";
    }

    /// <summary>
    /// "program exited with code 3", or "program was killed by signal 9 (SIGKILL)" for 128 + N, N
    /// from 1 to 31: .NET reports a process a signal ended as 128 + the signal, the shell's
    /// convention, so a program's own exit code in that range reads the same.
    /// </summary>
    /// <param name="exitCode">The program's exit code as .NET reports it.</param>
    public static string DescribeExit(int exitCode)
    {
        int signal = exitCode - 128;
        if (signal is < 1 or > 31) return string.Create(CultureInfo.InvariantCulture, $"program exited with code {exitCode}");
        string? name = signal switch
        {
            1 => "SIGHUP", 2 => "SIGINT", 3 => "SIGQUIT", 4 => "SIGILL", 6 => "SIGABRT", 7 => "SIGBUS", 8 => "SIGFPE",
            9 => "SIGKILL", 11 => "SIGSEGV", 13 => "SIGPIPE", 14 => "SIGALRM", 15 => "SIGTERM", _ => null,
        };
        return string.Create(CultureInfo.InvariantCulture, $"program was killed by signal {signal}{(name is null ? "" : $" ({name})")}");
    }
}

/// <summary>
/// A command trial's program could not be started, exited with another code than 0, or was killed by
/// a signal: the attempt failed (the sweep's retry policy decides what follows).
/// </summary>
/// <param name="message">"cannot start …", "program exited with code 3; last line on stderr: …", "program was killed by signal 9 (SIGKILL) …".</param>
/// <param name="exitCode">The program's exit code (128 + N for signal N), or null when it never ran.</param>
/// <param name="inner">Why it could not be started.</param>
public sealed class CommandFailedException(string message, int? exitCode = null, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The program's exit code (128 + N for signal N), or null when it never ran.</summary>
    public int? ExitCode { get; } = exitCode;
}

/// <summary>
/// A command trial's folders, from its checkpoint path <c>DIR/TRIAL.ckpt</c>: <c>DIR/TRIAL/checkpoint/</c>,
/// the same for every attempt, where the program writes its checkpoints, and <c>DIR/TRIAL/attempt-N/</c>,
/// attempt N's working directory, made afresh for it.
/// </summary>
/// <param name="Checkpoint">The checkpoint directory (absolute).</param>
/// <param name="Work">The attempt's working directory (absolute).</param>
public sealed record CommandDirectories(string Checkpoint, string Work)
{
    /// <summary>The folders of <paramref name="trial"/>'s attempt, from <see cref="TrainingOptions.CheckpointPath"/> (else <see cref="RunTrial.CheckpointPath"/>).</summary>
    /// <param name="trial">The attempt (its number names the working directory).</param>
    /// <param name="options">Where the trial's checkpoints go.</param>
    public static CommandDirectories Of(RunTrial trial, TrainingOptions options)
    {
        var path = Path.GetFullPath(options.CheckpointPath ?? trial.CheckpointPath);
        var folder = Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path));
        return new CommandDirectories(
            Path.Combine(folder, "checkpoint"),
            Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"attempt-{trial.Attempt}")));
    }

    /// <summary>
    /// Creates the checkpoint directory if it is not there, emptied when <paramref name="fromScratch"/>
    /// (no checkpoint was recorded, or the coordinator restarts the trial with a new spec, such as a
    /// halved batch: what is in it belongs to another run), and the working directory afresh (what
    /// an earlier run of the same attempt left is deleted).
    /// </summary>
    public void Prepare(bool fromScratch)
    {
        if (fromScratch && Directory.Exists(Checkpoint)) Directory.Delete(Checkpoint, recursive: true);
        Directory.CreateDirectory(Checkpoint);
        if (Directory.Exists(Work)) Directory.Delete(Work, recursive: true);
        Directory.CreateDirectory(Work);
    }
}
