using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using Sweep.GpuWorker.Runners;
using Sweep.GpuWorker.Training;
using Sweep.Protocol;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Synthetic;

/// <summary>
/// The synthetic model: trains nothing, so supervision, persistence, cluster wiring and benchmarks
/// can be exercised quickly. It keeps the real trainer's contract (test points at 0, every test
/// interval and at the end; checkpoints at every test point but the last and on cancel; exact
/// resume; Diverged for a NaN loss; <see cref="TrialOutOfMemoryException"/> for out of memory),
/// follows the deterministic <see cref="SyntheticCurve"/>, sleeps
/// <see cref="SyntheticSpec.IterationMs"/> per iteration, diverges at a learning rate at or above
/// <see cref="SyntheticSpec.DivergentLr"/> and injects the spec's faults.
/// </summary>
/// <remarks>
/// It never touches TorchSharp, so a synthetic sweep never loads LibTorch. For the same reason
/// <see cref="TrainingOptions.Threads"/> and <see cref="TrainingOptions.Device"/> are ignored: there
/// is nothing to compute on them. Checkpoint paths come from the options
/// (<see cref="TrainingOptions.CheckpointFileAt"/>), as for the real trainer.
/// </remarks>
public sealed class SyntheticRunner : ITrialRunner
{
    /// <summary>The iteration whose step makes the loss NaN when the learning rate is divergent (CASE8 diverges within a few dozen).</summary>
    private const int DivergesAtIteration = 20;

    public TrainingResult Run(RunTrial trial, TrainingOptions options, ITrainingObserver observer, CancellationToken cancellation)
    {
        var problems = trial.Trial.Spec.Problems();
        if (problems.Count > 0) throw new InvalidInputException(problems[0]);
        return new Session(trial, options, observer).Run(cancellation);
    }

    /// <summary>One run of one attempt.</summary>
    private sealed class Session
    {
        private readonly TrialSpec spec;
        private readonly SyntheticSpec synthetic;
        private readonly TrainingOptions options;
        private readonly ITrainingObserver observer;
        private readonly SyntheticCurve curve;

        /// <summary>The faults that apply to this attempt, by the iteration they strike at (the first listed wins).</summary>
        private readonly Dictionary<int, SyntheticFault> faults;
        private readonly int? divergesAt;
        private readonly List<TrialMetrics> metrics = [];

        /// <summary>Wall-clock time of the current interval (restarted at every test point).</summary>
        private readonly Stopwatch clock = new();

        /// <summary>Wall-clock time of this run's steps, against which the sleep is paced.</summary>
        private readonly Stopwatch pace = new();

        private IntervalSums interval = IntervalSums.Empty;
        private int iteration;
        private int stepsThisRun;

        public Session(RunTrial trial, TrainingOptions options, ITrainingObserver observer)
        {
            spec = trial.Trial.Spec;
            synthetic = trial.Synthetic;
            this.options = options;
            this.observer = observer;
            curve = new SyntheticCurve(spec.BatchSize, spec.BaseLr, spec.Seed);
            faults = synthetic.FaultList
                .Where(fault => fault.Trial == trial.Trial.Name && fault.Attempts.Contains(trial.Attempt))
                .GroupBy(fault => fault.AtIteration)
                .ToDictionary(group => group.Key, group => group.First());
            divergesAt = spec.BaseLr >= synthetic.DivergentLr ? Math.Min(DivergesAtIteration, spec.MaxIter - 1) : null;
        }

        public TrainingResult Run(CancellationToken cancellation)
        {
            clock.Start();
            if (options.ResumeFrom is { } resumePath)
            {
                Restore(resumePath);
            }
            else
            {
                // As Caffe shows at iteration 0: the first batch under the initial weights.
                var (loss, correct) = curve.TrainBatch(0);
                Report(loss, (double)correct / spec.BatchSize);
            }

            pace.Start();
            while (iteration < spec.MaxIter)
            {
                if (cancellation.IsCancellationRequested) return Cancelled();
                if (faults.TryGetValue(iteration, out var fault)) return Strike(fault);
                if (iteration == divergesAt) return Diverged();

                var (loss, correct) = curve.TrainBatch(iteration);
                interval = interval.Add(loss, correct, spec.BatchSize);
                iteration++;
                Pace(cancellation);

                if (iteration % spec.TestInterval == 0 || iteration == spec.MaxIter)
                {
                    Report(interval.LossSum / interval.Steps, (double)interval.Correct / interval.Seen);
                    if (options.CheckpointFileAt(iteration) is { } path && iteration < spec.MaxIter) SaveCheckpoint(path);
                }
            }
            return new TrainingResult(TrialOutcome.Completed, iteration, metrics, null, null);
        }

        private void Report(double trainLoss, double trainAccuracy)
        {
            var (testLoss, testAccuracy) = curve.Test(iteration);
            var entry = new TrialMetrics(
                iteration,
                trainLoss,
                trainAccuracy,
                testLoss,
                testAccuracy,
                spec.Solver.LearningRateAt(spec.BaseLr, iteration),
                interval.Seconds + clock.Elapsed.TotalSeconds,
                curve.PeakMemoryBytes);
            metrics.Add(entry);
            observer.OnMetrics(entry);
            interval = IntervalSums.Empty;
            clock.Restart();
        }

        /// <summary>
        /// Sleeps until this run has taken <see cref="SyntheticSpec.IterationMs"/> per step in total.
        /// Waits are whole milliseconds and overshoot, so pacing against the running total (rather
        /// than sleeping a fixed amount per step) keeps 0.3 ms × 1,000 steps at about 0.3 s: an
        /// overshoot is paid back by the following steps not sleeping at all.
        /// </summary>
        private void Pace(CancellationToken cancellation)
        {
            if (!(synthetic.IterationMs > 0)) return;
            stepsThisRun++;
            double target = stepsThisRun * synthetic.IterationMs;
            // Waiting on the token rather than sleeping lets a long iteration end as soon as it is cancelled.
            while (!cancellation.IsCancellationRequested)
            {
                double due = target - pace.Elapsed.TotalMilliseconds;
                if (due <= 0) return;
                cancellation.WaitHandle.WaitOne((int)Math.Ceiling(due));
            }
        }

        private TrainingResult Cancelled()
        {
            string? saved = null;
            if (options.CheckpointOnCancel && options.CheckpointFileAt(iteration) is { } path)
            {
                // The interval's time so far travels with the checkpoint, so the resumed report covers all of it.
                interval = interval with { Seconds = interval.Seconds + clock.Elapsed.TotalSeconds };
                saved = SaveCheckpoint(path);
            }
            return new TrainingResult(TrialOutcome.Cancelled, iteration, metrics, null, saved);
        }

        /// <summary>The step at the current iteration produced a NaN loss: stop there, without a report.</summary>
        private TrainingResult Diverged() =>
            new(TrialOutcome.Diverged, iteration, metrics, new DivergenceDetected(iteration, double.NaN, "loss is NaN"), null);

        private TrainingResult Strike(SyntheticFault fault) => fault.Kind switch
        {
            FaultKind.Exception => throw new InvalidOperationException($"injected fault: exception at iteration {iteration}"),
            FaultKind.Nan => Diverged(),
            FaultKind.OutOfMemory => throw new TrialOutOfMemoryException($"injected fault: out of memory at iteration {iteration} (batch {spec.BatchSize})"),
            FaultKind.Crash => Crash(),
            _ => throw new ArgumentOutOfRangeException(nameof(fault), fault.Kind, "unknown fault kind"),
        };

        /// <summary>
        /// Ends the whole process at once, as kill -9 would: no finally blocks, no shutdown hooks, so
        /// supervision and persistence meet a real crash. What was written so far is flushed first,
        /// so the log shows how far the process got.
        /// </summary>
        [DoesNotReturn]
        private static TrainingResult Crash()
        {
            Console.Out.Flush();
            Console.Error.Flush();
            using var self = Process.GetCurrentProcess();
            self.Kill();
            // The signal may take a moment to land; never carry on training meanwhile.
            while (true) Thread.Sleep(Timeout.Infinite);
        }

        private string SaveCheckpoint(string path)
        {
            new SyntheticCheckpoint(SyntheticCheckpoint.CurrentFormat, TrainerCheckpoint.Fingerprint(spec), iteration, interval).Save(path);
            observer.OnCheckpoint(iteration, path);
            return path;
        }

        private void Restore(string path)
        {
            var checkpoint = SyntheticCheckpoint.Load(path);
            CheckpointFiles.CheckBelongs(path, checkpoint.Fingerprint, checkpoint.Iteration, TrainerCheckpoint.Fingerprint(spec), spec.MaxIter);
            iteration = checkpoint.Iteration;
            interval = checkpoint.Interval;
        }
    }

    /// <summary>
    /// All the synthetic model's state at one iteration: the curve is a function of the iteration, so
    /// only the running sums of the current interval need keeping for an exact resume. A small JSON
    /// file, written atomically (temporary file, then rename) like the real trainer's.
    /// </summary>
    private sealed record SyntheticCheckpoint(string Format, string Fingerprint, int Iteration, IntervalSums Interval)
    {
        public const string CurrentFormat = "sweep-synthetic-checkpoint/1";

        private static readonly JsonSerializerOptions Json = new()
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            // A file missing a field is damaged, not a checkpoint at iteration 0.
            RespectRequiredConstructorParameters = true,
            RespectNullableAnnotations = true,
        };

        public void Save(string path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            var temporary = path + ".partial";
            using (var stream = File.Create(temporary))
            {
                JsonSerializer.Serialize(stream, this, Json);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }

        /// <summary>Reads a checkpoint written by <see cref="Save"/>.</summary>
        /// <exception cref="InvalidInputException">The file does not exist.</exception>
        /// <exception cref="CheckpointUnreadableException">It is there but cannot be read: truncated, not JSON, a field missing, another format.</exception>
        public static SyntheticCheckpoint Load(string path)
        {
            if (!File.Exists(path)) throw new InvalidInputException($"{path}: checkpoint not found");
            SyntheticCheckpoint? checkpoint;
            try
            {
                checkpoint = JsonSerializer.Deserialize<SyntheticCheckpoint>(File.ReadAllText(path), Json);
            }
            catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
            {
                throw new CheckpointUnreadableException(path, $"damaged checkpoint ({e.GetType().Name}: {e.Message})", e);
            }
            if (checkpoint is null) throw new CheckpointUnreadableException(path, "damaged checkpoint (empty)");
            if (checkpoint.Format != CurrentFormat)
                throw new CheckpointUnreadableException(path, $"not a synthetic-model checkpoint (format '{checkpoint.Format}', expected '{CurrentFormat}')");
            return checkpoint;
        }
    }
}
