using System.Runtime.InteropServices;

namespace Sweep.GpuWorker.Workers;

/// <summary>
/// Process groups (Linux): a worker process leads a group of its own, so that what it starts (a
/// command trial's program, and that program's children) belongs to it and ends with it, whoever
/// ends it: the worker itself when its agent is gone, or the agent when the worker was killed.
/// </summary>
public static partial class ProcessGroups
{
    private const int SigKill = 9;

    /// <summary>
    /// Makes this process the leader of a new process group; false where there are none (not
    /// Linux) or it failed. A terminal's Ctrl+C then no longer reaches this process or its children
    /// directly: its agent stops them, with a checkpoint.
    /// </summary>
    public static bool LeadOwnGroup() => OperatingSystem.IsLinux() && setpgid(0, 0) == 0;

    /// <summary>
    /// SIGKILL to every process of the group <paramref name="leader"/> led: what a killed worker
    /// process leaves behind (its command trial's program). Nothing when the group is empty or gone.
    /// Called with this process's own id, it ends this process too.
    /// </summary>
    public static void KillGroup(int leader)
    {
        if (OperatingSystem.IsLinux() && leader > 1) _ = kill(-leader, SigKill);
    }

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/> (0: only whether it exists); true when it was sent.</summary>
    public static bool Signal(int pid, int signal) => OperatingSystem.IsLinux() && kill(pid, signal) == 0;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpgid(int pid, int pgid);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
