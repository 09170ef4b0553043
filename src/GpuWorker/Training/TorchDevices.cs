using Sweep.Protocol;
using TorchSharp;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.Training;

/// <summary>Turns a device name from the command line or a spec into a TorchSharp device.</summary>
public static class TorchDevices
{
    /// <summary>
    /// <c>auto</c>: <c>cuda:0</c> when CUDA is available, else the CPU; <c>cpu</c>; <c>cuda</c> (device 0)
    /// or <c>cuda:N</c>, refused with a clear message when this build or machine has no such device.
    /// </summary>
    public static Device Resolve(string name)
    {
        var normalised = name.Trim().ToLowerInvariant();
        if (normalised == "auto") return cuda.is_available() ? new Device(DeviceType.CUDA, 0) : CPU;
        if (normalised == "cpu") return CPU;
        if (normalised == "cuda" || normalised.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (normalised.Length > 4 && !int.TryParse(normalised[5..], out index) || index < 0)
                throw new InvalidInputException($"device '{name}': expected auto, cpu, cuda or cuda:N");
            if (!cuda.is_available())
                throw new InvalidInputException($"device '{name}': CUDA is not available here (a CPU build of LibTorch, or no NVIDIA driver); use cpu or auto");
            if (index >= cuda.device_count())
                throw new InvalidInputException($"device '{name}': only {cuda.device_count()} CUDA device(s) present");
            return new Device(DeviceType.CUDA, index);
        }
        throw new InvalidInputException($"device '{name}': expected auto, cpu, cuda or cuda:N");
    }

    /// <summary>The CUDA devices of this machine: one worker slot each.</summary>
    public static int CudaDeviceCount => cuda.is_available() ? cuda.device_count() : 0;
}
