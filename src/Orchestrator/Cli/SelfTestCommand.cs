using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sweep.GpuWorker.SelfTest;
using Sweep.GpuWorker.Training;
using Sweep.Orchestrator.Running;
using Sweep.Protocol;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Cli;

/// <summary>
/// `sweep selftest [--device D] [--threads N] [--json]`: the known-answer self-test that every
/// worker slot and `sweep train` run before training, by hand, with every layer's error.
/// Exit code 0 when it passes, 1 when the device computes wrong numbers, 2 for bad input.
/// </summary>
public static class SelfTestCommand
{
    public static Command Create(TextWriter output)
    {
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var threads = new Option<int?>("--threads") { Description = "LibTorch threads [default: a default worker slot's]." };
        var json = new Option<bool>("--json") { Description = "The report as one JSON object." };
        var command = new Command("selftest", "Check this machine's arithmetic: LeNet's layers forward and backward against float64, as every worker slot does before it takes trials.")
        {
            device, threads, json,
        };
        command.SetAction((parsed, _) =>
        {
            var deviceName = parsed.GetValue(device)!;
            int threadCount = parsed.GetValue(threads) ?? WorkerLayout.For(ModelKind.Lenet, null, null).Threads;
            if (TrainingOptions.ThreadsProblem(threadCount, "--threads") is { } problem) throw new InvalidInputException(problem);
            TorchDevices.Resolve(deviceName);
            var report = KnownAnswerTest.Run(deviceName, threadCount, SelfTestFault.FromEnvironment());
            if (parsed.GetValue(json)) output.WriteLine(JsonSerializer.Serialize(Json(report)));
            else Print(report, output);
            return Task.FromResult(report.Passed ? SweepCommandLine.ExitOk : SweepCommandLine.ExitFailed);
        });
        return command;
    }

    private static void Print(SelfTestReport report, TextWriter output)
    {
        output.WriteLine($"LeNet self-test on {report.Device}, {report.Threads} thread(s), {KnownAnswerTest.Images} MNIST images; kernels: {report.Kernels?.ToString() ?? "not applied"}");
        if (report.Checks.Count > 0)
        {
            output.WriteLine($"  {"pass",-10} {"layer",-6} {"quantity",-16} {"rel. error",10}  result");
            foreach (var c in report.Checks)
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {c.Pass,-10} {c.Layer,-6} {c.Quantity,-16} {c.RelativeError,10:0.0e+00}  {(c.Passed ? "ok" : "FAILED")}"));
        }
        output.WriteLine(report.Summary);
    }

    private static object Json(SelfTestReport report) => new
    {
        device = report.Device,
        threads = report.Threads,
        passed = report.Passed,
        summary = report.Summary,
        kernels = report.Kernels?.ToString(),
        seconds = report.Seconds,
        tolerance = KnownAnswerTest.Tolerance,
        checks = report.Checks.Select(c => new
        {
            pass = c.Pass,
            layer = c.Layer,
            quantity = c.Quantity,
            relativeError = double.IsFinite(c.RelativeError) ? c.RelativeError : (double?)null,
            passed = c.Passed,
        }),
    };
}
