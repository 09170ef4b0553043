namespace Sweep.Protocol.Messages;

/// <summary>
/// A worker process's first line to its agent (the <c>TrialWorker</c> actor of its slot), once it
/// has run its slot's self-test: it takes trials from now on when <paramref name="Health"/> says so.
/// Sent again by every restarted worker process.
/// </summary>
/// <param name="ProcessId">The worker process's operating-system process id.</param>
/// <param name="Health">Its slot's self-test verdict, measured in this very process.</param>
public sealed record WorkerProcessReady(int ProcessId, SlotHealth Health) : ISweepMessage;

/// <summary>
/// A line of a command trial's log, from its worker process to the agent, which logs it with the
/// trial's properties (so that <c>sweep logs ID --trial NAME</c> shows it): a line the program
/// wrote that is not a test point, or what the runner says about the program.
/// </summary>
/// <param name="TrialId">The trial.</param>
/// <param name="Attempt">Its attempt.</param>
/// <param name="Stream">"stdout" or "stderr" for the program's lines; null for the runner's own.</param>
/// <param name="Text">The line.</param>
/// <param name="Warning">Logged at Warning (standard error, a kill after the grace period), else Info.</param>
public sealed record TrialLogLine(string TrialId, int Attempt, string? Stream, string Text, bool Warning) : ISweepMessage;
