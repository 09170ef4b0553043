namespace Sweep.Protocol.Messages;

/// <summary>
/// A worker process's first line to its agent (the <c>TrialWorker</c> actor of its slot), once it
/// has run its slot's self-test: it takes trials from now on when <paramref name="Health"/> says so.
/// Sent again by every restarted worker process.
/// </summary>
/// <param name="ProcessId">The worker process's operating-system process id.</param>
/// <param name="Health">Its slot's self-test verdict, measured in this very process.</param>
public sealed record WorkerProcessReady(int ProcessId, SlotHealth Health) : ISweepMessage;
