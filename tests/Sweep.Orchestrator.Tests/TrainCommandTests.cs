using System.Text.Json;
using Sweep.Orchestrator.Cli;

namespace Sweep.Orchestrator.Tests;

/// <summary>`sweep train` as users call it: in-process for the output format, as a real process for signals.</summary>
[Collection(ProcessCollection.Name)]
public sealed class TrainCommandTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-cli-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    private static async Task<(int ExitCode, string Stdout, string Stderr)> Sweep(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await SweepCommandLine.RunAsync(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Json_mode_prints_one_object_per_test_point_and_a_final_line()
    {
        var (exit, stdout, stderr) = await Sweep("train", "--max-iter", "40", "--test-interval", "20", "--threads", "2", "--json");

        Assert.Equal(0, exit);
        Assert.Equal("", stderr);
        var objects = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(4, objects.Count);
        Assert.Equal(new[] { 0, 20, 40 }, objects.Take(3).Select(o => o.GetProperty("iteration").GetInt32()));
        foreach (var o in objects.Take(3))
        {
            foreach (var field in new[] { "trainLoss", "trainAccuracy", "testLoss", "testAccuracy", "learningRate", "seconds" })
                Assert.True(o.GetProperty(field).GetDouble() >= 0, field);
            Assert.True(o.GetProperty("peakMemoryBytes").GetInt64() > 0);
        }
        Assert.Equal(0.01, objects[0].GetProperty("learningRate").GetDouble(), 12);
        var final = objects[^1];
        Assert.True(final.GetProperty("final").GetBoolean());
        Assert.Equal("completed", final.GetProperty("outcome").GetString());
        Assert.Equal(40, final.GetProperty("iteration").GetInt32());
        Assert.False(final.TryGetProperty("divergedAtIteration", out _));
    }

    [Fact]
    public async Task Case8_is_reported_as_diverged_with_its_iteration_and_exits_0()
    {
        var (exit, stdout, _) = await Sweep("train", "--base-lr", "0.1", "--max-iter", "1000", "--threads", "2", "--json");

        Assert.Equal(0, exit);
        var final = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        Assert.Equal("diverged", final.GetProperty("outcome").GetString());
        Assert.InRange(final.GetProperty("divergedAtIteration").GetInt32(), 1, 999);
    }

    [Fact]
    public async Task Readable_mode_prints_a_line_per_test_point()
    {
        var (exit, stdout, _) = await Sweep("train", "--max-iter", "20", "--test-interval", "10", "--batch-size", "16", "--threads", "2");

        Assert.Equal(0, exit);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("batch 16, test batch 32", lines[0]);
        Assert.Equal(3, lines.Count(l => l.StartsWith("iter ")));
        Assert.StartsWith("completed 20 iterations, test accuracy 0.", lines[^1]);
    }

    [Theory]
    [InlineData("batch-size must be positive", "train", "--batch-size", "0")]
    [InlineData("base-lr must be positive", "train", "--base-lr", "-0.5")]
    [InlineData("max-iter must be positive", "train", "--max-iter", "0")]
    [InlineData("--batch-size", "train", "--batch-size", "many")]
    [InlineData("--lr-policy", "train", "--lr-policy", "cosine")]
    [InlineData("--frobnicate", "train", "--frobnicate")]
    [InlineData("--threads must be positive, got 0", "train", "--threads", "0")]
    [InlineData("--threads 99999 is more than 4 per core", "train", "--threads", "99999")]
    [InlineData("--threads: 'abc' is not a whole number", "train", "--threads", "abc")]
    [InlineData("device 'cuda:99'", "train", "--device", "cuda:99", "--max-iter", "1")]
    [InlineData("dataset folder not found", "train", "--dataset", "/nonexistent/mnist")]
    public async Task Bad_input_is_one_line_naming_the_problem_and_exit_code_2(string says, params string[] args)
    {
        var (exit, stdout, stderr) = await Sweep(args);

        Assert.Equal(2, exit);
        Assert.Contains(says, stderr);
        Assert.StartsWith("sweep: ", stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("iter ", stdout);
    }

    [Fact]
    public async Task A_broken_dataset_file_is_named_with_exit_code_2()
    {
        var dataset = Path.Combine(temp, "mnist");
        Directory.CreateDirectory(dataset);
        foreach (var file in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "data", "mnist-10k")))
            File.Copy(file, Path.Combine(dataset, Path.GetFileName(file)));
        File.WriteAllBytes(Path.Combine(dataset, "train-labels-idx1-ubyte.gz"), [1, 2, 3]);

        var (exit, _, stderr) = await Sweep("train", "--dataset", dataset);

        Assert.Equal(2, exit);
        Assert.Contains("train-labels-idx1-ubyte.gz", stderr);
    }

    [Fact]
    public void Ctrl_c_stops_the_real_process_with_a_checkpoint_that_resume_finishes()
    {
        var checkpoint = Path.Combine(temp, "trial.ckpt");
        string[] trial = ["train", "--max-iter", "400", "--test-interval", "100", "--threads", "2", "--json"];
        using (var run = SweepProcess.Start([.. trial, "--checkpoint", checkpoint]))
        {
            run.WaitForLine(l => l.Contains("\"iteration\":100"), TimeSpan.FromMinutes(2));
            run.Signal(SweepProcess.SIGINT);
            Assert.Equal(130, run.WaitForExit(TimeSpan.FromMinutes(1)));
            var final = JsonDocument.Parse(run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
            Assert.Equal("cancelled", final.GetProperty("outcome").GetString());
            Assert.Equal(checkpoint, final.GetProperty("checkpoint").GetString());
            Assert.InRange(final.GetProperty("iteration").GetInt32(), 100, 399);
        }

        var (exit, stdout, stderr) = SweepProcess.Run([.. trial, "--resume", checkpoint]);
        Assert.True(exit == 0, stderr);
        var resumed = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        Assert.Equal("completed", resumed.GetProperty("outcome").GetString());
        Assert.Equal(400, resumed.GetProperty("iteration").GetInt32());
    }
}
