using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.Training;

/// <summary>
/// Peak memory of one trial. CPU: the process's peak resident set (VmHWM), reset at the start of
/// the trial through /proc/self/clear_refs, so a worker process that runs one trial after another
/// reports each trial's own peak: before the reset, what earlier trials left is given back (a full
/// garbage collection, so their tensors are freed, then an aggressive one, so the runtime decommits
/// its free heap, then glibc's <c>malloc_trim(0)</c>, so freed native heap leaves the resident set),
/// and every trial starts from about the same resident base (the runtime, LibTorch and the shared
/// dataset). Resolution: what the allocators keep resident anyway (fragments of an earlier, larger
/// trial, the code the first trial compiled) can only raise a later figure, measured here up to about
/// 50 MB for one shape (25 MB less with the aggressive collection than without); differences between
/// trials smaller than that are not meaningful, and the smallest reading of a shape is its best.
/// Trials running side by side in one process would share that figure: a `sweep` node runs each
/// slot's trials in a worker process of its own. CUDA: the device's used memory from NVML, sampled at
/// each test point, when the NVIDIA driver is present; 0 otherwise.
/// </summary>
public sealed class PeakMemory
{
    private readonly Device device;
    private long peak;

    public PeakMemory(Device device)
    {
        this.device = device;
        if (device.type == DeviceType.CPU) ResetProcessPeak();
    }

    public long Sample()
    {
        long now = device.type == DeviceType.CUDA ? Nvml.UsedBytes(device.index) : ProcessPeakBytes();
        peak = Math.Max(peak, now);
        return peak;
    }

    private static void ResetProcessPeak()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (OperatingSystem.IsLinux())
        {
            try
            {
                malloc_trim(0);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // Not glibc: freed heap may stay resident, and the figure includes it.
            }
        }
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or not allowed: the figure is then the process's peak so far.
        }
    }

    private static long ProcessPeakBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith("VmHWM:", StringComparison.Ordinal)) continue;
                var kilobytes = line["VmHWM:".Length..].Trim().Split(' ')[0];
                return long.Parse(kilobytes, System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
        }
        return Environment.WorkingSet;
    }

    [DllImport("libc")]
    private static extern int malloc_trim(nuint pad);

    /// <summary>The NVIDIA management library, loaded only when a CUDA device is used.</summary>
    private static class Nvml
    {
        private static readonly Lazy<bool> Initialised = new(() =>
        {
            try
            {
                return nvmlInit_v2() == 0;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return false;
            }
        });

        public static long UsedBytes(int deviceIndex)
        {
            if (!Initialised.Value) return 0;
            if (nvmlDeviceGetHandleByIndex_v2((uint)Math.Max(deviceIndex, 0), out var handle) != 0) return 0;
            return nvmlDeviceGetMemoryInfo(handle, out var info) == 0 ? (long)info.Used : 0;
        }

        [StructLayout(LayoutKind.Sequential)]
        private struct MemoryInfo
        {
            public ulong Total;
            public ulong Free;
            public ulong Used;
        }

        [DllImport("libnvidia-ml.so.1")]
        private static extern int nvmlInit_v2();

        [DllImport("libnvidia-ml.so.1")]
        private static extern int nvmlDeviceGetHandleByIndex_v2(uint index, out IntPtr device);

        [DllImport("libnvidia-ml.so.1")]
        private static extern int nvmlDeviceGetMemoryInfo(IntPtr device, out MemoryInfo memory);
    }
}
