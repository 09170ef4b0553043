using System.Globalization;

namespace Sweep.GpuWorker.Runners;

/// <summary>
/// A process and its descendants, read from Linux's /proc: to signal them all (a <c>bash</c> script
/// and the <c>python3</c> it runs) and to measure their memory. Each member is known by its pid and
/// its start time, so a pid the kernel has since given to another process is never signalled.
/// Elsewhere than Linux only the process itself is known, and signalled without that check.
/// </summary>
internal static class ProcessTree
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    /// <summary>One process: its pid and its start time in clock ticks since boot (-1: unknown, not checked).</summary>
    public readonly record struct Member(int Pid, long StartTicks);

    /// <summary><paramref name="root"/> and every process descended from it, root first; empty when the root is gone.</summary>
    public static IReadOnlyList<Member> Of(int root)
    {
        if (!OperatingSystem.IsLinux()) return [new Member(root, -1)];
        var members = new List<Member>();
        var seen = new HashSet<int>();
        var pending = new Queue<int>();
        pending.Enqueue(root);
        while (pending.Count > 0)
        {
            int pid = pending.Dequeue();
            if (!seen.Add(pid) || Stat(pid) is not { State: not 'Z' } stat) continue;
            members.Add(new Member(pid, stat.StartTicks));
            foreach (var child in Children(pid)) pending.Enqueue(child);
        }
        return members;
    }

    /// <summary>Whether <paramref name="member"/> still runs (not gone, not a zombie, not a new process with its pid).</summary>
    public static bool IsAlive(Member member)
    {
        if (member.StartTicks < 0) return Workers.ProcessGroups.Signal(member.Pid, 0);
        return Stat(member.Pid) is { State: not 'Z' } stat && stat.StartTicks == member.StartTicks;
    }

    /// <summary>Sends <paramref name="signal"/> to each member still alive; returns how many were signalled.</summary>
    public static int Signal(IEnumerable<Member> members, int signal)
    {
        int signalled = 0;
        foreach (var member in members)
        {
            if (IsAlive(member) && Workers.ProcessGroups.Signal(member.Pid, signal)) signalled++;
        }
        return signalled;
    }

    /// <summary>
    /// The sum of the members' peak resident sets (VmHWM), in bytes: each process's own high-water
    /// mark, so the sum can exceed what they held together at any one moment, and a member that has
    /// already exited no longer counts. 0 where /proc is not there.
    /// </summary>
    public static long PeakResidentBytes(IEnumerable<Member> members)
    {
        long total = 0;
        foreach (var member in members) total += PeakResidentBytes(member.Pid);
        return total;
    }

    private static long PeakResidentBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("VmHWM:", StringComparison.Ordinal)) continue;
                var kilobytes = line["VmHWM:".Length..].Trim().Split(' ')[0];
                return long.TryParse(kilobytes, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value * 1024 : 0;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return 0;
    }

    /// <summary>The children of every thread of <paramref name="pid"/> (/proc/PID/task/TID/children).</summary>
    private static IEnumerable<int> Children(int pid)
    {
        var children = new List<int>();
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                string text;
                try
                {
                    text = File.ReadAllText(Path.Combine(task, "children"));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }
                foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (int.TryParse(word, NumberStyles.None, CultureInfo.InvariantCulture, out var child)) children.Add(child);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return children;
    }

    /// <summary>The state letter and start time of /proc/PID/stat (fields 3 and 22), or null when the process is gone.</summary>
    private static (char State, long StartTicks)? Stat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
        int close = text.LastIndexOf(')');
        if (close < 0) return null;
        var fields = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
        if (fields.Length < 20 || fields[0].Length != 1) return null;
        return long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start) ? (fields[0][0], start) : null;
    }
}
