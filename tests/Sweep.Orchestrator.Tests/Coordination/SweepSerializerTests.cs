using Akka.Actor;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Serialization;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Tests.Coordination;

/// <summary>The wire and journal format: every allow-listed type round-trips, anything else is refused.</summary>
public sealed class SweepSerializerTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TrialDefinition Trial = new("abc123", "CASE1", new TrialSpec(64, 128, 0.01, 1000, 100, 1, new SolverSpec(), new DatasetSpec("/data", 500, null)));

    private static readonly SweepDefinition Definition = new(
        "paper", "hocon/sweeps/paper-lenet.conf", ModelKind.Lenet, [Trial], new DivergencePolicy(300, 0.11, 10), new RetryPolicy(3, 1.5),
        OutOfMemoryPolicy.HalveBatch, -1, new SyntheticSpec(2, 0.08, [new SyntheticFault("CASE1", 10, FaultKind.Crash, [1, 2])]));

    private static readonly DateTimeOffset At = new(2026, 11, 26, 12, 0, 0, TimeSpan.FromHours(1));

    public static TheoryData<object> Samples() =>
    [
        new SweepStarted("s1", Definition, At),
        new TrialStarted("abc123", 2, "vm/cpu-1", "vm", 300, At),
        new TrialProgress("abc123", 1, new TrialMetrics(100, double.NaN, 0.5, double.PositiveInfinity, 0.9, 0.0093, 1.2, 123_456_789), At),
        new TrialCheckpointed("abc123", 1, 100, "/ck/abc123.ckpt", At),
        new TrialCompleted("abc123", 1, At),
        new TrialRestartedFromScratch("abc123", 2, "/ck/abc123.ckpt", At),
        new TrialRestartedFromScratch("abc123", 2, "/ck/abc123.it000000300.ckpt", At, "damaged checkpoint (EndOfStreamException: end of stream)"),
        new TrialCheckpointMissing("abc123", 2, "/ck/abc123.ckpt"),
        new TrialCheckpointMissing("abc123", 2, "/ck/abc123.it000000300.ckpt", "damaged checkpoint (EndOfStreamException: end of stream)"),
        new TrialCheckpointRecorded("abc123", 1, 300),
        new Sweep.Protocol.Messages.OpenSweep("s1"),
        new DirectorSweepOpened("s1", At),
        new TrialDiverged("abc123", 1, 23, "loss is NaN", At),
        new TrialFailed("abc123", 3, "boom", true, true, At),
        new TrialRequeued("abc123", "out of memory", Trial.Spec with { BatchSize = 32 }, true, At.AddSeconds(2), At),
        new TrialHandedBack("abc123", 2, "vm/cpu-1", "worker vm/cpu-1 is leaving", At),
        new SweepInterrupted(At),
        new SweepCompleted(At),
        new RegisterWorker(new WorkerSlot("vm/cpu-1", "vm", "cpu", 2), null, "i1", SlotHealth.NotNeeded),
        new WorkerRegistered("s1"),
        new WorkerLeaving(new WorkerSlot("vm/cpu-1", "vm", "cpu", 2), "i1"),
        new TrialEnded("abc123", 2, TrialEndKind.HandedBack, 0, "worker vm/cpu-1 is leaving", null),
        new RunTrial("s1", Trial, 1, ModelKind.Synthetic, Definition.Synthetic, Definition.Divergence, "/ck/abc123.ckpt", null),
        new StopTrial("abc123", 1, true),
        new TestPointReported("abc123", 1, new TrialMetrics(0, 2.3, 0.1, 2.3, 0.1, 0.01, 0.2, 1)),
        new TrialCheckpointSaved("abc123", 1, 100, "/ck/abc123.ckpt"),
        new TrialEnded("abc123", 1, TrialEndKind.OutOfMemory, 40, "out of memory", null),
        new TrialEndRecorded("abc123", 1),
        new StartSweep(Definition),
        new SweepAccepted("s1", 9, 3),
        new SweepRefused("s1", "exists"),
    ];

    [Theory]
    [MemberData(nameof(Samples))]
    public void Every_allow_listed_type_round_trips_through_its_manifest(object sample)
    {
        var serializer = new SweepSerializer((ExtendedActorSystem)Sys);

        var manifest = serializer.Manifest(sample);
        var copy = serializer.FromBinary(serializer.ToBinary(sample), manifest);

        Assert.Matches(@"\.v[0-9]+$", manifest);
        Assert.Equal(Json(sample), Json(copy));
    }

    [Fact]
    public async Task The_programs_actor_system_uses_it_for_events_snapshots_and_messages()
    {
        var dataDir = Directory.CreateTempSubdirectory("sweep-serializer-").FullName;
        try
        {
            await using (var program = await Sweep.Orchestrator.Hosting.SweepSystem.StartAsync(new Sweep.Orchestrator.Hosting.JournalSettings(dataDir)))
            {
                foreach (var sample in new object[] { new TrialCompleted("t", 1, At), new SweepSnapshot("s", Definition, SweepPhase.Running, [], At, null), new RunTrial("s", Trial, 1, ModelKind.Lenet, new SyntheticSpec(), new DivergencePolicy(), "/ck", null) })
                    Assert.IsType<SweepSerializer>(program.System.Serialization.FindSerializerFor(sample));
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public void Restarts_and_missing_checkpoints_written_before_reasons_existed_still_read_without_one()
    {
        var serializer = new SweepSerializer((ExtendedActorSystem)Sys);

        // Exactly what the journal and the wire held before the Reason parameter was added.
        var restarted = serializer.FromBinary("""{"trialId":"abc123","attempt":2,"path":"/ck/abc123.ckpt","at":"2026-11-26T12:00:00+01:00"}"""u8.ToArray(), "trial-restarted-from-scratch.v1");
        var missing = serializer.FromBinary("""{"trialId":"abc123","attempt":2,"path":"/ck/abc123.ckpt"}"""u8.ToArray(), "trial-checkpoint-missing.v1");

        Assert.Equal(new TrialRestartedFromScratch("abc123", 2, "/ck/abc123.ckpt", At), restarted);
        Assert.Equal(new TrialCheckpointMissing("abc123", 2, "/ck/abc123.ckpt"), missing);
        Assert.Null(((TrialRestartedFromScratch)restarted).Reason);
    }

    [Fact]
    public void A_snapshot_written_before_trials_kept_their_last_test_point_reads_with_none()
    {
        var serializer = new SweepSerializer((ExtendedActorSystem)Sys);
        var running = TrialRecord.Queued(Trial) with { State = TrialState.Running, Attempts = 2, Iteration = 300, LastTestPoint = 300 };
        var snapshot = new SweepSnapshot("s1", Definition, SweepPhase.Running, [running], At, null);
        var json = System.Text.Encoding.UTF8.GetString(serializer.ToBinary(snapshot));
        Assert.Contains("\"lastTestPoint\":300,", json);

        // Exactly what a snapshot held before the field existed.
        var old = (SweepSnapshot)serializer.FromBinary(System.Text.Encoding.UTF8.GetBytes(json.Replace("\"lastTestPoint\":300,", "")), "sweep-snapshot.v1");

        Assert.Equal(running with { LastTestPoint = null }, Assert.Single(old.Trials));
    }

    [Theory]
    [InlineData("System.IO.FileInfo, System.IO.FileSystem")]
    [InlineData("trial-completed.v9")]
    [InlineData("")]
    public void An_unknown_manifest_is_refused_without_touching_the_payload(string manifest)
    {
        var serializer = new SweepSerializer((ExtendedActorSystem)Sys);

        var error = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary("{\"fileName\":\"/etc/passwd\"}"u8.ToArray(), manifest));

        Assert.Contains("unknown manifest", error.Message);
    }

    [Fact]
    public void A_malformed_payload_is_refused_with_its_manifest()
    {
        var serializer = new SweepSerializer((ExtendedActorSystem)Sys);

        var error = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => serializer.FromBinary("{not json"u8.ToArray(), "trial-completed.v1"));

        Assert.Contains("trial-completed.v1", error.Message);
    }

    [Fact]
    public void Types_outside_the_allow_list_are_never_written()
    {
        var serializer = new SweepSerializer((ExtendedActorSystem)Sys);
        Assert.Throws<ArgumentException>(() => serializer.ToBinary(new FileInfo("/etc/passwd")));
    }

    private static string Json(object o) => System.Text.Json.JsonSerializer.Serialize(o, o.GetType(), SweepSerializer.Json);
}
