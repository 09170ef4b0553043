using System.Runtime.InteropServices;
using TorchSharp;

namespace Sweep.GpuWorker.Training;

/// <summary>What <see cref="TorchKernels.EnsureApplied"/> set, as read back from LibTorch.</summary>
/// <param name="OneDnn">oneDNN (mkldnn) convolutions, linear layers and pooling: off.</param>
/// <param name="Nnpack">NNPACK's Winograd/FFT convolutions for inference: off.</param>
/// <param name="DeterministicCuDnn">cuDNN limited to deterministic algorithms: on (no effect on the CPU).</param>
/// <param name="BenchmarkCuDnn">cuDNN's autotuner, which picks algorithms by timing: off (no effect on the CPU).</param>
public sealed record KernelSettings(bool OneDnn, bool Nnpack, bool DeterministicCuDnn, bool BenchmarkCuDnn)
{
    /// <summary>One line for logs and <c>sweep selftest</c>.</summary>
    public override string ToString() =>
        $"oneDNN {(OneDnn ? "on" : "off")}, NNPACK {(Nnpack ? "on" : "off")}, cuDNN deterministic {(DeterministicCuDnn ? "on" : "off")}, cuDNN benchmark {(BenchmarkCuDnn ? "on" : "off")}";
}

/// <summary>
/// Chooses, once per process and before any tensor work, the LibTorch kernels that compute every
/// trial's numbers, and proves the choice took effect by reading it back.
/// </summary>
/// <remarks>
/// <para>
/// LibTorch 2.10's oneDNN (mkldnn) convolution computes wrong numbers for LeNet's conv2 (20→50
/// channels, 5×5) on AMD EPYC CPUs with AVX-512: up to 0.43 absolute error against float64, and
/// NaN from memory it never wrote when a second trial runs in the process (engineering notes §1;
/// the same class as pytorch/pytorch#49268 and #84488). LibTorch's own convolution (im2col and
/// MKL's GEMM, "slow_conv2d") is within 1e-6 relative of float64 on every CPU measured, so oneDNN
/// is switched off; NNPACK (a Winograd/FFT inference path) is switched off too, so that training
/// and testing use one convolution. On CUDA, cuDNN is held to deterministic algorithms with the
/// autotuner off, so a trial gives the same numbers alone and in a sweep, and TF32 (10-bit
/// mantissas) is switched off for convolutions. Every process that trains also runs the
/// known-answer self-test (<see cref="SelfTest.KnownAnswerTest"/>), which checks the result.
/// </para>
/// <para>
/// TorchSharp 0.107 has no setting for any of these: they are <c>at::Context</c> members exported
/// by <c>libtorch_cpu.so</c> (present in CPU and CUDA builds alike), called here through their C++
/// symbols. A LibTorch without them is refused with <see cref="TorchKernelsException"/>, so an
/// upgrade can never bring the faulty kernels back silently.
/// </para>
/// </remarks>
public static class TorchKernels
{
    /// <summary>The library whose <c>at::Context</c> holds the switches.</summary>
    public const string Library = "libtorch_cpu.so";

    private static readonly Lazy<KernelSettings> Applied = new(() => Apply(LoadedLibraryExports), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// Applies the settings the first time it is called in this process (later calls return the
    /// same result, or throw the same error); call it before any tensor work.
    /// </summary>
    /// <returns>The settings as read back from LibTorch.</returns>
    /// <exception cref="TorchKernelsException">A switch is missing from this LibTorch, or did not take effect.</exception>
    public static KernelSettings EnsureApplied() => Applied.Value;

    /// <summary>Looks up <c>at::Context</c> symbols in the LibTorch that TorchSharp loaded.</summary>
    private static IntPtr LoadedLibraryExports(string symbol)
    {
        // TorchSharp loads LibTorch on first use; a bare name then finds the loaded copy by its soname.
        torch.InitializeDeviceType(DeviceType.CPU);
        if (!NativeLibrary.TryLoad(Library, out var handle))
            throw new TorchKernelsException($"{Library} could not be found next to TorchSharp: the LibTorch natives are missing");
        return NativeLibrary.TryGetExport(handle, symbol, out var address) ? address : IntPtr.Zero;
    }

    /// <summary>
    /// Sets every switch through the exports that <paramref name="export"/> finds (IntPtr.Zero when
    /// missing), reads each back, and throws if one is missing or reads back wrong.
    /// </summary>
    internal static unsafe KernelSettings Apply(Func<string, IntPtr> export)
    {
        var context = Context(export);
        var settings = new KernelSettings(
            OneDnn: Switch(export, context, OneDnnSwitch, wanted: false),
            Nnpack: Switch(export, context, ("UserEnabledNNPACK", "_ZN2at7Context20setUserEnabledNNPACKEb", "_ZNK2at7Context17userEnabledNNPACKEv"), wanted: false),
            DeterministicCuDnn: Switch(export, context, ("DeterministicCuDNN", "_ZN2at7Context21setDeterministicCuDNNEb", "_ZNK2at7Context18deterministicCuDNNEv"), wanted: true),
            BenchmarkCuDnn: Switch(export, context, ("BenchmarkCuDNN", "_ZN2at7Context17setBenchmarkCuDNNEb", "_ZNK2at7Context14benchmarkCuDNNEv"), wanted: false));
        // TF32 for cuDNN convolutions (its getter takes a std::optional, so it is not read back; the self-test checks the arithmetic).
        ((delegate* unmanaged<IntPtr, byte, void>)Require(export, "_ZN2at7Context17setAllowTF32CuDNNEb", "at::Context::setAllowTF32CuDNN(bool)"))(context, 0);
        return settings;
    }

    /// <summary>
    /// For the <c>kernels</c> benchmark only, which measures both paths against float64: switches
    /// oneDNN on or off for the whole process and reads it back. Never called by anything that trains
    /// for a sweep.
    /// </summary>
    internal static void SetOneDnnForMeasurement(bool enabled)
    {
        EnsureApplied();
        Switch(LoadedLibraryExports, Context(LoadedLibraryExports), OneDnnSwitch, enabled);
    }

    /// <summary>The oneDNN switch: its name after "set", its setter's and its getter's symbols.</summary>
    private static readonly (string Name, string Setter, string Getter) OneDnnSwitch =
        ("UserEnabledMkldnn", "_ZN2at7Context20setUserEnabledMkldnnEb", "_ZNK2at7Context17userEnabledMkldnnEv");

    private static unsafe IntPtr Context(Func<string, IntPtr> export)
    {
        var context = ((delegate* unmanaged<IntPtr>)Require(export, "_ZN2at13globalContextEv", "at::globalContext()"))();
        return context != IntPtr.Zero ? context : throw new TorchKernelsException("at::globalContext() returned null");
    }

    /// <summary>Sets one boolean <c>at::Context</c> switch and reads it back; throws when it does not take.</summary>
    private static unsafe bool Switch(Func<string, IntPtr> export, IntPtr context, (string Name, string Setter, string Getter) which, bool wanted)
    {
        var set = (delegate* unmanaged<IntPtr, byte, void>)Require(export, which.Setter, $"at::Context::set{which.Name}(bool)");
        var get = (delegate* unmanaged<IntPtr, byte>)Require(export, which.Getter, $"at::Context::{char.ToLowerInvariant(which.Name[0])}{which.Name[1..]}()");
        set(context, wanted ? (byte)1 : (byte)0);
        bool actual = get(context) != 0;
        if (actual != wanted)
            throw new TorchKernelsException($"LibTorch ignored at::Context::set{which.Name}({(wanted ? "true" : "false")}): it reads back {(actual ? "true" : "false")}; refusing to train on kernels that were not chosen");
        return actual;
    }

    private static IntPtr Require(Func<string, IntPtr> export, string symbol, string readable)
    {
        var address = export(symbol);
        if (address == IntPtr.Zero)
            throw new TorchKernelsException($"{Library} has no {readable} ({symbol}): this LibTorch cannot be told to avoid its oneDNN convolutions, which compute wrong numbers on some CPUs; refusing to train (use the LibTorch version pinned in Directory.Packages.props)");
        return address;
    }
}

/// <summary>The kernels could not be chosen: training would risk wrong numbers, so nothing trains.</summary>
public sealed class TorchKernelsException(string message) : Exception(message);
