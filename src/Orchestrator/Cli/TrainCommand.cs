using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sweep.GpuWorker.Data;
using Sweep.GpuWorker.SelfTest;
using Sweep.GpuWorker.Training;
using Sweep.Protocol;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Cli;

/// <summary>`sweep train`: one trial in the foreground, a line per test point (or JSON lines with --json).</summary>
public static class TrainCommand
{
    private static readonly JsonSerializerOptions JsonLines = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static Command Create(TextWriter output, TextWriter error)
    {
        var defaults = TrialSpec.PaperCase1(new DatasetSpec(MnistData.EmbeddedPath));
        var batchSize = new Option<int>("--batch-size") { Description = "Training mini-batch size.", DefaultValueFactory = _ => defaults.BatchSize };
        var testBatchSize = new Option<int?>("--test-batch-size") { Description = "Test batch size [default: twice the batch size]." };
        var baseLr = new Option<double>("--base-lr") { Description = "Base learning rate.", DefaultValueFactory = _ => defaults.BaseLr };
        var maxIter = new Option<int>("--max-iter") { Description = "Training iterations.", DefaultValueFactory = _ => defaults.MaxIter };
        var testInterval = new Option<int>("--test-interval") { Description = "Test every N iterations.", DefaultValueFactory = _ => defaults.TestInterval };
        var policy = new Option<LearningRatePolicy>("--lr-policy") { Description = "Learning-rate policy: inv, fixed or step.", DefaultValueFactory = _ => defaults.Solver.Policy };
        var gamma = new Option<double>("--gamma") { Description = "γ of the inv and step policies.", DefaultValueFactory = _ => defaults.Solver.Gamma };
        var power = new Option<double>("--power") { Description = "Power of the inv policy.", DefaultValueFactory = _ => defaults.Solver.Power };
        var stepSize = new Option<int>("--step-size") { Description = "Iterations per step of the step policy.", DefaultValueFactory = _ => defaults.Solver.StepSize };
        var seed = new Option<int>("--seed") { Description = "Seed of the initial weights and the batch order.", DefaultValueFactory = _ => defaults.Seed };
        // No DefaultValueFactory where the description names the default in words: the help would show it twice.
        var threads = new Option<int?>("--threads") { Description = "LibTorch threads [default: all cores]." };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var dataset = new Option<string?>("--dataset") { Description = "Folder with the four MNIST IDX files [default: the embedded 8,000/2,000 subset]." };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Write the trial's state to this file at every test interval (and on Ctrl+C)." };
        var resume = new Option<string?>("--resume") { Description = "Continue from a checkpoint written by --checkpoint." };
        var json = new Option<bool>("--json") { Description = "One JSON object per line instead of readable lines." };

        var command = new Command("train", "Train one trial (Caffe's LeNet on MNIST) in the foreground.")
        {
            batchSize, testBatchSize, baseLr, maxIter, testInterval, policy, gamma, power, stepSize, seed, threads, device, dataset, checkpoint, resume, json,
        };
        command.SetAction((parsed, cancellation) =>
        {
            int batch = parsed.GetValue(batchSize);
            var spec = new TrialSpec(
                batch,
                parsed.GetValue(testBatchSize) ?? 2 * batch,
                parsed.GetValue(baseLr),
                parsed.GetValue(maxIter),
                parsed.GetValue(testInterval),
                parsed.GetValue(seed),
                new SolverSpec(Policy: parsed.GetValue(policy), Gamma: parsed.GetValue(gamma), Power: parsed.GetValue(power), StepSize: parsed.GetValue(stepSize)),
                new DatasetSpec(parsed.GetValue(dataset) ?? MnistData.EmbeddedPath));
            var options = new TrainingOptions(
                parsed.GetValue(threads) ?? TrainingOptions.DefaultThreads,
                parsed.GetValue(device)!,
                parsed.GetValue(checkpoint),
                parsed.GetValue(resume),
                CheckpointOnCancel: true);
            return Task.FromResult(Train(spec, options, parsed.GetValue(json), output, error, cancellation));
        });
        return command;
    }

    private static int Train(TrialSpec spec, TrainingOptions options, bool json, TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        var problems = spec.Problems();
        if (problems.Count > 0) throw new InvalidInputException(problems[0]);
        if (TrainingOptions.ThreadsProblem(options.Threads, "--threads") is { } threadsProblem) throw new InvalidInputException(threadsProblem);
        var data = MnistData.Shared(spec.Dataset);
        TorchDevices.Resolve(options.Device);
        // Like every worker slot, prove the device's arithmetic before training on it.
        var selfTest = KnownAnswerTest.Run(options.Device, options.Threads, SelfTestFault.FromEnvironment());
        if (!selfTest.Passed)
        {
            error.WriteLine($"sweep: {selfTest.Summary}; nothing was trained ('sweep selftest --device {options.Device} --threads {options.Threads}' shows every layer)");
            if (json) output.WriteLine(JsonSerializer.Serialize(FinalLine.Failed(0, selfTest.Summary, selfTest.Summary), JsonLines));
            return SweepCommandLine.ExitFailed;
        }
        if (!json)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"LeNet on {spec.Dataset.Path} ({data.Train.Count} train / {data.Test.Count} test): batch {spec.BatchSize}, test batch {spec.TestBatchSize}, " +
                $"base lr {spec.BaseLr}, {Describe(spec.Solver)}, {spec.MaxIter} iterations, {options.Threads} thread(s), device {options.Device}"));
            output.WriteLine(selfTest.Summary);
        }

        var observer = new Printer(output, json);
        TrainingResult result;
        try
        {
            result = Trainer.Run(spec, data, options, observer, cancellation);
        }
        catch (FaultBeforeLearningException fault)
        {
            error.WriteLine($"sweep: {fault.Message}");
            if (json) output.WriteLine(JsonSerializer.Serialize(FinalLine.Failed(0, fault.Message, selfTest.Summary), JsonLines));
            return SweepCommandLine.ExitFailed;
        }

        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new FinalLine(
                true,
                JsonNamingPolicy.CamelCase.ConvertName(result.Outcome.ToString()),
                result.Iteration,
                result.Divergence?.Iteration,
                result.Divergence?.Reason,
                result.Metrics.LastOrDefault()?.TestAccuracy,
                result.CheckpointPath,
                selfTest.Summary), JsonLines));
        }
        else
        {
            output.WriteLine(result.Outcome switch
            {
                TrialOutcome.Completed => $"completed {result.Iteration} iterations, test accuracy {result.Metrics[^1].TestAccuracy:F4}",
                TrialOutcome.Diverged => $"diverged at iteration {result.Divergence!.Iteration}: {result.Divergence.Reason}",
                _ => $"cancelled at iteration {result.Iteration}" + (result.CheckpointPath is { } path ? $"; continue with --resume {path}" : ""),
            });
        }
        return result.Outcome == TrialOutcome.Cancelled ? SweepCommandLine.ExitInterrupted : SweepCommandLine.ExitOk;
    }

    private static string Describe(SolverSpec solver) => solver.Policy switch
    {
        LearningRatePolicy.Inv => string.Create(CultureInfo.InvariantCulture, $"inv (gamma {solver.Gamma}, power {solver.Power})"),
        LearningRatePolicy.Step => string.Create(CultureInfo.InvariantCulture, $"step (gamma {solver.Gamma} every {solver.StepSize})"),
        _ => "fixed",
    };

    /// <param name="Outcome">completed, diverged, cancelled, or failed (the self-test failed, or the loss was not finite before any update; <paramref name="Error"/> says which).</param>
    private sealed record FinalLine(
        bool Final,
        string Outcome,
        int Iteration,
        int? DivergedAtIteration,
        string? DivergenceReason,
        double? FinalTestAccuracy,
        string? Checkpoint,
        string SelfTest,
        string? Error = null)
    {
        public static FinalLine Failed(int iteration, string error, string selfTest) => new(true, "failed", iteration, null, null, null, null, selfTest, error);
    }

    private sealed class Printer(TextWriter output, bool json) : ITrainingObserver
    {
        public void OnMetrics(TrialMetrics m)
        {
            output.WriteLine(json
                ? JsonSerializer.Serialize(m, JsonLines)
                : string.Create(CultureInfo.InvariantCulture,
                    $"iter {m.Iteration,6}  train loss {m.TrainLoss:F4} acc {m.TrainAccuracy:F4}  test loss {m.TestLoss:F4} acc {m.TestAccuracy:F4}  lr {m.LearningRate:G5}  {m.Seconds,6:F2} s  peak {m.PeakMemoryBytes / 1048576.0:F0} MiB"));
            output.Flush();
        }
    }
}
