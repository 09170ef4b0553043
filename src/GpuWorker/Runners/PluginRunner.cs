using System.Diagnostics;
using System.Runtime.InteropServices;
using Sweep.GpuWorker.Training;
using Sweep.Protocol;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;
using Sweep.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.Runners;

/// <summary>
/// Runs a trial of a plug-in model (<c>model = plugin</c>, docs/plugins.md) in this process: the
/// model's type is created afresh for each attempt (<see cref="PluginLoader"/>) and trained on the
/// calling thread through a <see cref="ITrialContext"/> that holds the trial's parameters and sends
/// its test points and checkpoints to the observer, as LeNet's trainer does: LibTorch's kernels and
/// threads set first (<see cref="TorchKernels"/>), peak memory sampled at each test point
/// (<see cref="PeakMemory"/>), a NaN or infinite loss a divergence (before any update: a fault), an
/// out-of-memory error <see cref="TrialOutOfMemoryException"/>. Checkpoints are files named by the
/// trial's checkpoint path and their iteration (<see cref="CheckpointFiles.Versioned"/>), so the
/// worker keeps, supersedes and resumes them exactly as LeNet's.
/// </summary>
/// <param name="create">Creates the model of an attempt (default: the trial's <see cref="RunTrial.Plugin"/> through <see cref="PluginLoader.Create"/>).</param>
/// <param name="log">Receives the model's <see cref="ITrialContext.Log"/> lines (default: standard error, the worker process's log).</param>
public sealed class PluginRunner(Func<RunTrial, ITrialModel>? create = null, Action<RunTrial, string>? log = null) : ITrialRunner
{
    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">The trial has no <see cref="RunTrial.Plugin"/> (and no other way to create its model was given).</exception>
    public TrainingResult Run(RunTrial trial, TrainingOptions options, ITrainingObserver observer, CancellationToken cancellation)
    {
        var spec = trial.Trial.Spec;
        // Kernels and threads before any tensor work, the model's constructor included.
        var device = Trainer.Prepare(spec, options);
        var model = (create ?? CreateFromSpec)(trial);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var context = new Context(trial, options, device, observer, stop, log ?? ((_, line) => Console.Error.WriteLine(line)));
        try
        {
            model.Train(context);
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            throw new TrialOutOfMemoryException($"out of memory at batch {spec.BatchSize}: {e.Message.Split('\n')[0]}", e);
        }
        catch (Sweep.Training.CheckpointUnreadableException damaged)
        {
            throw new Training.CheckpointUnreadableException(options.ResumeFrom ?? "", damaged.Cause, damaged);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
        return context.Result();
    }

    /// <summary>A model's <see cref="ITrialContext.Log"/> lines into a trial log, at Info (as a command trial's standard output).</summary>
    /// <param name="log">Where the lines go: the trial's log, or the worker process's agent.</param>
    public static Action<RunTrial, string> LogTo(ICommandLog log) => (trial, line) => log.Line(trial, CommandStream.Output, line);

    private static ITrialModel CreateFromSpec(RunTrial trial) =>
        PluginLoader.Create(trial.Plugin ?? throw new InvalidOperationException($"trial {trial.Trial.Name} is a plug-in trial without its plugin {{ }} spec"));

    /// <summary>LibTorch reports exhausted device or host memory as an ExternalException whose message says so.</summary>
    private static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException
        || (e is ExternalException or InvalidOperationException && e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase));

    /// <summary>The context of one attempt: its parameters, and what it reported.</summary>
    private sealed class Context : ITrialContext
    {
        private readonly RunTrial trial;
        private readonly TrialSpec spec;
        private readonly TrainingOptions options;
        private readonly ITrainingObserver observer;
        private readonly CancellationTokenSource stop;
        private readonly Action<RunTrial, string> log;
        private readonly PeakMemory memory;
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private readonly List<TrialMetrics> metrics = [];
        private DivergenceDetected? divergence;
        private string? fault;
        private int lastIteration;
        private string? lastCheckpoint;

        public Context(RunTrial trial, TrainingOptions options, Device device, ITrainingObserver observer, CancellationTokenSource stop, Action<RunTrial, string> log)
        {
            this.trial = trial;
            spec = trial.Trial.Spec;
            this.options = options;
            this.observer = observer;
            this.stop = stop;
            this.log = log;
            Device = device.type == DeviceType.CUDA ? $"cuda:{Math.Max(0, (int)device.index)}" : "cpu";
            memory = new PeakMemory(device);
            if (CheckpointDirectory is { } folder) Directory.CreateDirectory(folder);
            if (options.ResumeFrom is { } resume)
            {
                ResumePath = Path.GetFullPath(resume);
                ResumeIteration = CheckpointFiles.IterationOf(options.CheckpointPath ?? trial.CheckpointPath, resume);
                lastIteration = ResumeIteration ?? 0;
            }
        }

        public int BatchSize => spec.BatchSize;
        public int TestBatchSize => spec.TestBatchSize;
        public double BaseLr => spec.BaseLr;
        public int MaxIter => spec.MaxIter;
        public int TestInterval => spec.TestInterval;
        public int Seed => spec.Seed;
        public double Momentum => spec.Solver.Momentum;
        public double WeightDecay => spec.Solver.WeightDecay;
        public string LearningRatePolicy => spec.Solver.Policy.ToString().ToLowerInvariant();
        public double Gamma => spec.Solver.Gamma;
        public double Power => spec.Solver.Power;
        public int StepSize => spec.Solver.StepSize;
        public double LearningRateAt(int iteration) => spec.Solver.LearningRateAt(spec.BaseLr, iteration);
        public IReadOnlyList<string> ParameterNames => [.. (spec.Parameters?.Items ?? []).Select(p => p.Name)];
        public long GetInteger(string name) => Typed(name, ParameterKind.Integer, v => v.AsInteger());
        public double GetReal(string name) => Typed(name, ParameterKind.Real, v => v.AsReal());
        public string GetString(string name) => Typed(name, ParameterKind.String, v => v.Text);
        public bool GetBoolean(string name) => Typed(name, ParameterKind.Boolean, v => v.AsBoolean());
        public string Device { get; }
        public int Threads => options.Threads;
        public string DatasetPath => Path.GetFullPath(spec.Dataset.Path);
        public int? TrainCount => spec.Dataset.TrainCount;
        public int? TestCount => spec.Dataset.TestCount;
        public string? CheckpointDirectory => options.CheckpointPath is { } path ? Path.GetDirectoryName(Path.GetFullPath(path)) : null;
        public string? ResumePath { get; }
        public int? ResumeIteration { get; }
        public CancellationToken Cancellation => stop.Token;

        public string? CheckpointPath(int iteration) => options.CheckpointFileAt(iteration) is { } path ? Path.GetFullPath(path) : null;

        public void Report(int iteration, double testAccuracy, double testLoss, double trainLoss, double trainAccuracy = double.NaN, double learningRate = double.NaN, double seconds = double.NaN)
        {
            if (divergence is not null || fault is not null) return;
            var entry = new TrialMetrics(iteration, trainLoss, trainAccuracy, testLoss, testAccuracy, learningRate, double.IsNaN(seconds) ? clock.Elapsed.TotalSeconds : seconds, memory.Sample());
            clock.Restart();
            if (DivergencePolicy.FaultBeforeLearning(entry) is { } before)
            {
                fault = before;
                stop.Cancel();
                return;
            }
            if (!double.IsFinite(trainLoss))
            {
                // In the words of LeNet's trainer and the synthetic model; a non-finite test loss goes on to the sweep's divergence policy ("test loss is not finite").
                divergence = new DivergenceDetected(iteration, trainLoss, double.IsNaN(trainLoss) ? "loss is NaN" : "loss is infinite");
                stop.Cancel();
                return;
            }
            metrics.Add(entry);
            lastIteration = iteration;
            observer.OnMetrics(entry);
        }

        public void Checkpointed(int iteration)
        {
            var path = CheckpointPath(iteration) ?? throw new InvalidOperationException("this run keeps no checkpoints (CheckpointDirectory is null)");
            if (!File.Exists(path)) throw new InvalidOperationException($"Checkpointed({iteration}): {path} was not written");
            lastCheckpoint = path;
            lastIteration = Math.Max(lastIteration, iteration);
            observer.OnCheckpoint(iteration, path);
        }

        public void Log(string message) => log(trial, message);

        /// <summary>How the attempt ended, once the model returned.</summary>
        public TrainingResult Result()
        {
            if (fault is not null) throw new FaultBeforeLearningException(fault);
            if (divergence is not null) return new TrainingResult(TrialOutcome.Diverged, divergence.Iteration, metrics, divergence, null);
            if (stop.IsCancellationRequested && lastIteration < spec.MaxIter)
                return new TrainingResult(TrialOutcome.Cancelled, lastIteration, metrics, null, lastCheckpoint);
            return new TrainingResult(TrialOutcome.Completed, lastIteration, metrics, null, null);
        }

        private T Typed<T>(string name, ParameterKind kind, Func<ParameterValue, T> read)
        {
            var value = spec.Parameters?.Get(name)
                ?? throw new TrialParameterException(name, $"trial {trial.Trial.Name} has no parameter '{name}' (it has: {(ParameterNames.Count == 0 ? "none" : string.Join(", ", ParameterNames))}); give it in the sweep's grid, cases or parameters");
            bool fits = value.Kind == kind || (kind == ParameterKind.Real && value.Kind == ParameterKind.Integer);
            return fits ? read(value) : throw new TrialParameterException(name, $"parameter '{name}' of trial {trial.Trial.Name} is {value.Describe()}, not {(kind == ParameterKind.Integer ? "an" : "a")} {ParameterValue.KindName(kind)}");
        }
    }
}
