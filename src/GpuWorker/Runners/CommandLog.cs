using Akka.Event;
using Sweep.GpuWorker.Logging;
using Sweep.Protocol.Messages;

namespace Sweep.GpuWorker.Runners;

/// <summary>Which of a command trial's output streams a log line came from.</summary>
public enum CommandStream
{
    /// <summary>Standard output: a line that is not part of the protocol (logged at Info).</summary>
    Output,

    /// <summary>Standard error (logged at Warning).</summary>
    Error,
}

/// <summary>
/// Where a command trial's log goes: the lines its program writes that are not test points or
/// checkpoints, and what the runner itself has to say about the program (the command it starts, a
/// kill after the grace period). Called on the runner's thread, in the order the lines were read
/// (each stream in its own order).
/// </summary>
public interface ICommandLog
{
    /// <summary>A line the program wrote (without its line end).</summary>
    /// <param name="trial">The attempt that wrote it.</param>
    /// <param name="stream">Standard output (Info) or standard error (Warning).</param>
    /// <param name="line">The line as written.</param>
    void Line(RunTrial trial, CommandStream stream, string line);

    /// <summary>What the runner has to say about the attempt's program.</summary>
    /// <param name="trial">The attempt.</param>
    /// <param name="text">One line.</param>
    /// <param name="warning">Logged at Warning (else Info).</param>
    void Note(RunTrial trial, string text, bool warning);
}

/// <summary>The two places a command trial's log can go.</summary>
public static class CommandLog
{
    /// <summary>
    /// Standard error, one line per event, "trial NAME attempt N stdout: LINE": a worker process's
    /// standard error is its log, which the slot's agent logs (see
    /// <see cref="Workers.WorkerProcessSlot"/>).
    /// </summary>
    public static ICommandLog StandardError { get; } = new WriterLog(Console.Error);

    /// <summary>
    /// The trial's log in <paramref name="log"/>, with the properties every trial log event carries
    /// (<see cref="TrialLog.ForTrial"/>: SweepId, TrialId, TrialName, Attempt, Node, Worker), as
    /// "Trial {TrialName} attempt {Attempt} {Stream}: {Line}".
    /// </summary>
    /// <param name="log">The log of the slot's actor (Serilog behind it in a `sweep` process).</param>
    /// <param name="node">The node the slot is on.</param>
    /// <param name="worker">The slot's worker id.</param>
    public static ICommandLog ToTrialLog(ILoggingAdapter log, string? node, string? worker) => new AdapterLog(log, node, worker);

    /// <summary>
    /// Messages to the slot's agent (<see cref="TrialLogLine"/>), from a worker process: the agent
    /// logs each with the trial's properties (<see cref="Workers.WorkerProcessSlot"/>).
    /// </summary>
    /// <param name="send">Writes a message on the worker process's protocol output.</param>
    public static ICommandLog ToAgent(Action<ISweepMessage> send) => new AgentLog(send);

    /// <summary>Logs <paramref name="line"/> to <paramref name="log"/> as <see cref="ToTrialLog"/> does (the agent's side of <see cref="ToAgent"/>).</summary>
    public static void Write(TrialLogLine line, RunTrial trial, ILoggingAdapter log, string? node, string? worker)
    {
        var to = new AdapterLog(log, node, worker);
        if (line.Stream is null) to.Note(trial, line.Text, line.Warning);
        else to.Line(trial, line.Stream == "stderr" ? CommandStream.Error : CommandStream.Output, line.Text);
    }

    internal static string StreamName(CommandStream stream) => stream == CommandStream.Output ? "stdout" : "stderr";

    private sealed class WriterLog(TextWriter writer) : ICommandLog
    {
        public void Line(RunTrial trial, CommandStream stream, string line) =>
            writer.WriteLine($"trial {trial.Trial.Name} attempt {trial.Attempt} {StreamName(stream)}: {line}");

        public void Note(RunTrial trial, string text, bool warning) =>
            writer.WriteLine($"trial {trial.Trial.Name} attempt {trial.Attempt}: {text}");
    }

    private sealed class AgentLog(Action<ISweepMessage> send) : ICommandLog
    {
        public void Line(RunTrial trial, CommandStream stream, string line) =>
            send(new TrialLogLine(trial.Trial.Id, trial.Attempt, StreamName(stream), line, stream == CommandStream.Error));

        public void Note(RunTrial trial, string text, bool warning) =>
            send(new TrialLogLine(trial.Trial.Id, trial.Attempt, null, text, warning));
    }

    private sealed class AdapterLog(ILoggingAdapter log, string? node, string? worker) : ICommandLog
    {
        private ILoggingAdapter For(RunTrial trial) => log.ForTrial(trial.SweepId, trial.Trial.Id, trial.Trial.Name, trial.Attempt, node, worker);

        public void Line(RunTrial trial, CommandStream stream, string line)
        {
            const string template = "Trial {TrialName} attempt {Attempt} {Stream}: {Line}";
            if (stream == CommandStream.Error) For(trial).Warning(template, trial.Trial.Name, trial.Attempt, StreamName(stream), line);
            else For(trial).Info(template, trial.Trial.Name, trial.Attempt, StreamName(stream), line);
        }

        public void Note(RunTrial trial, string text, bool warning)
        {
            const string template = "Trial {TrialName} attempt {Attempt}: {Note}";
            if (warning) For(trial).Warning(template, trial.Trial.Name, trial.Attempt, text);
            else For(trial).Info(template, trial.Trial.Name, trial.Attempt, text);
        }
    }
}
