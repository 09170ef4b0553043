using System.Text.Json;

namespace Sweep.Orchestrator.Tests.Specs;

/// <summary>Specs as a user runs them: the real `sweep run` on a spec file, and its output.</summary>
[Collection(ProcessCollection.Name)]
public sealed class SpecRunEndToEndTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-spec-run-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    private string DataDir => Path.Combine(temp, "data");

    private string WriteSpec(string text)
    {
        var path = Path.Combine(temp, "spec.conf");
        File.WriteAllText(path, text);
        return path;
    }

    private JsonElement Status(string sweepId)
    {
        var (exit, stdout, stderr) = SweepProcess.Run("status", sweepId, "--data-dir", DataDir, "--json");
        Assert.True(exit == 0, stdout + stderr);
        return JsonDocument.Parse(stdout).RootElement;
    }

    [Fact]
    public void A_spec_written_on_one_line_with_commas_after_objects_runs()
    {
        // The reported spec, with a trailing comma and an include for good measure.
        File.WriteAllText(Path.Combine(temp, "speed.conf"), "sweep.synthetic { iteration-ms = 0 }");
        var spec = WriteSpec("sweep { name = x, model = synthetic, grid { batch-size = [16, 32,], base-lr = [0.01] }, max-iter = 20, }, include \"speed.conf\"");

        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "one-line", "--data-dir", DataDir, "--workers", "1", "--set", "sweep.test-interval=1e1");

        Assert.True(exit == 0, stdout + stderr);
        Assert.DoesNotContain("sweep:", stderr); // no error or warning about the spec (the log may warn about other things)
        var trials = Status("one-line").GetProperty("trials").EnumerateArray().ToList();
        Assert.Equal(["b16-lr0.01", "b32-lr0.01"], trials.Select(t => t.GetProperty("name").GetString()));
        Assert.All(trials, t => Assert.Equal(("Completed", 20, 20), (t.GetProperty("state").GetString(), t.GetProperty("maxIter").GetInt32(), t.GetProperty("iteration").GetInt32())));
    }

    [Fact]
    public void Named_cases_with_the_same_settings_run_once_with_a_warning_and_a_fault_aimed_at_the_second_strikes()
    {
        var spec = WriteSpec("""
            sweep {
              name = twins, model = synthetic, max-iter = 40, test-interval = 20
              retry { max-attempts = 2, backoff = 0 }
              cases = [
                { name = first, batch-size = 32, base-lr = 0.01 }
                { name = second, batch-size = 32, base-lr = 0.01 }
              ]
              synthetic { faults = [ { trial = second, at-iteration = 10, kind = exception, attempts = [1] } ] }
            }
            """);

        var (exit, stdout, stderr) = SweepProcess.Run("run", spec, "--sweep-id", "twins", "--data-dir", DataDir, "--workers", "1");

        Assert.True(exit == 0, stdout + stderr);
        // The spec's warning, and the log's warning about the injected failure.
        var warning = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("sweep: warning:", StringComparison.Ordinal));
        Assert.StartsWith($"sweep: warning: {spec}: sweep.cases[1]: case \"second\" has the same settings as case \"first\" (sweep.cases[0])", warning);
        var trial = Assert.Single(Status("twins").GetProperty("trials").EnumerateArray());
        Assert.Equal(("first", "Completed", 2), (trial.GetProperty("name").GetString(), trial.GetProperty("state").GetString(), trial.GetProperty("attempts").GetInt32()));
        Assert.Contains("injected", trial.GetProperty("error").GetString(), StringComparison.OrdinalIgnoreCase);
    }
}
