using Akka.Actor;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Specs;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Serialization;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>
/// A sweep started from another node travels in parts small enough for Akka.Remote's frame
/// (128,000 bytes by default, akka.remote.dot-netty.tcp.maximum-frame-size) and is put back together
/// exactly; a part that went missing means nothing is recorded.
/// </summary>
public sealed class StartAssemblyTests : Akka.TestKit.Xunit2.TestKit
{
    private const int AkkaRemoteFrameBytes = 128_000;

    /// <summary>A spec of 10,000 synthetic trials (5 batch sizes × 10 rates × 200 seeds, 10 iterations of 1 ms), as a user writes it.</summary>
    internal static string TenThousandTrialsSpec => $$"""
        sweep {
          name = large
          model = synthetic
          max-iter = 10
          test-interval = 10
          grid {
            batch-size = [16, 32, 64, 128, 256]
            base-lr = [0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.2]
            seed = [{{string.Join(", ", Enumerable.Range(1, 200))}}]
          }
          synthetic { iteration-ms = 1 }
        }
        """;

    private static SweepDefinition TenThousandTrials() => SweepSpecLoader.Parse(TenThousandTrialsSpec, "large.conf", Path.GetTempPath(), []);

    private byte[] Wire(StartSweep message) => new SweepSerializer((ExtendedActorSystem)Sys).ToBinary(message);

    [Fact]
    public void Ten_thousand_trials_travel_in_parts_that_fit_the_remote_frame_and_come_back_in_order()
    {
        var definition = TenThousandTrials();
        Assert.Equal(10_000, definition.Trials.Count);
        Assert.True(Wire(new StartSweep(definition)).Length > 10 * AkkaRemoteFrameBytes, "the whole definition does not fit one frame");

        var parts = StartSweep.InParts(definition);
        var serializer = new SweepSerializer((ExtendedActorSystem)Sys);
        IReadOnlyList<StartSweep> held = [];
        StartAssembly.Step? step = null;
        foreach (var part in parts)
        {
            var bytes = Wire(part);
            Assert.True(bytes.Length < AkkaRemoteFrameBytes, $"part {part.Part} is {bytes.Length} bytes");
            var received = (StartSweep)serializer.FromBinary(bytes, serializer.Manifest(part));
            step = StartAssembly.Add(held, received);
            held = step.Held;
            if (received.Part < received.Parts - 1) Assert.Equal(new StartAssembly.Step(held, null, null), step);
        }

        Assert.True(parts.Count > 1);
        Assert.All(parts, part => Assert.Equal(parts.Count, part.Parts));
        Assert.Equal(Enumerable.Range(0, parts.Count), parts.Select(part => part.Part));
        Assert.Null(step!.Problem);
        Assert.Empty(step.Held);
        var whole = step.Whole!;
        Assert.Equal(definition.Trials, whole.Trials);
        // The rest of the definition, as the wire writes it (its lists compare by reference).
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(definition with { Trials = [] }, SweepSerializer.Json),
            System.Text.Json.JsonSerializer.Serialize(whole with { Trials = [] }, SweepSerializer.Json));
    }

    [Fact]
    public void A_definition_that_fits_is_one_part_and_whole_at_once()
    {
        var definition = TenThousandTrials() is var large ? large with { Trials = large.Trials.Take(10).ToList() } : null!;

        var parts = StartSweep.InParts(definition);

        var part = Assert.Single(parts);
        Assert.Equal((0, 1), (part.Part, part.Parts));
        var step = StartAssembly.Add([], part);
        Assert.Equal(definition.Trials, step.Whole!.Trials);
    }

    [Fact]
    public void A_missing_part_leaves_nothing_to_record_and_says_why_on_the_last_part()
    {
        var parts = StartSweep.InParts(TenThousandTrials());
        IReadOnlyList<StartSweep> held = [];
        StartAssembly.Step step = null!;
        foreach (var part in parts.Where(part => part.Part != 1))
        {
            step = StartAssembly.Add(held, part);
            held = step.Held;
        }

        Assert.Null(step.Whole);
        Assert.Contains("only some of them arrived", step.Problem);
        Assert.Empty(step.Held);
    }

    [Fact]
    public void A_new_first_part_starts_over_and_an_impossible_part_number_is_refused()
    {
        var parts = StartSweep.InParts(TenThousandTrials());
        var firstTry = StartAssembly.Add([], parts[0]).Held;
        IReadOnlyList<StartSweep> held = StartAssembly.Add(firstTry, parts[1]).Held;

        // The run began again from part 0 (the first attempt's answer never came): the second attempt alone counts.
        StartAssembly.Step step = null!;
        foreach (var part in parts)
        {
            step = StartAssembly.Add(held, part);
            held = step.Held;
        }
        Assert.Equal(10_000, step.Whole!.Trials.Count);

        Assert.Contains("is not a part", StartAssembly.Add([], parts[0] with { Part = 5, Parts = 3 }).Problem);
    }
}
