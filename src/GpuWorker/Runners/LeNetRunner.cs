using System.Runtime.InteropServices;
using Sweep.GpuWorker.Data;
using Sweep.GpuWorker.Training;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Runners;

/// <summary>Runs a trial of Caffe's LeNet with the real trainer; each dataset is loaded once per process.</summary>
public sealed class LeNetRunner : ITrialRunner
{
    public TrainingResult Run(RunTrial trial, TrainingOptions options, ITrainingObserver observer, CancellationToken cancellation)
    {
        var spec = trial.Trial.Spec;
        var data = MnistData.Shared(spec.Dataset);
        try
        {
            return Trainer.Run(spec, data, options, observer, cancellation);
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            throw new TrialOutOfMemoryException($"out of memory at batch {spec.BatchSize}: {e.Message.Split('\n')[0]}", e);
        }
    }

    /// <summary>LibTorch reports exhausted device or host memory as an ExternalException whose message says so.</summary>
    private static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException
        || (e is ExternalException or InvalidOperationException && e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase));
}
