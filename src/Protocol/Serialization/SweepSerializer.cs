using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;

namespace Sweep.Protocol.Serialization;

/// <summary>
/// The only serializer for persisted events, snapshots and messages between nodes: System.Text.Json
/// with an explicit, versioned string manifest per type. Only the types in the allow-list below are
/// ever written or read; an unknown manifest is refused, never resolved through a type name (Akka's
/// Newtonsoft default has lost immutable types and opened deserialisation by type name).
/// A contract change that is not backward compatible gets a new manifest (".v2") next to the old one.
/// </summary>
public sealed class SweepSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    /// <summary>Above 100, as Akka reserves the ids below for its own serializers.</summary>
    public const int SerializerId = 4217;

    private static readonly IReadOnlyDictionary<Type, string> ManifestByType = new Dictionary<Type, string>
    {
        // events and snapshots
        [typeof(SweepStarted)] = "sweep-started.v1",
        [typeof(TrialStarted)] = "trial-started.v1",
        [typeof(TrialProgress)] = "trial-progress.v1",
        [typeof(TrialCheckpointed)] = "trial-checkpointed.v1",
        [typeof(TrialRestartedFromScratch)] = "trial-restarted-from-scratch.v1",
        [typeof(TrialCompleted)] = "trial-completed.v1",
        [typeof(TrialDiverged)] = "trial-diverged.v1",
        [typeof(TrialFailed)] = "trial-failed.v1",
        [typeof(TrialStoppedEarly)] = "trial-stopped-early.v1",
        [typeof(TrialRequeued)] = "trial-requeued.v1",
        [typeof(TrialHandedBack)] = "trial-handed-back.v1",
        [typeof(SweepInterrupted)] = "sweep-interrupted.v1",
        [typeof(SweepCompleted)] = "sweep-completed.v1",
        [typeof(SlotChecked)] = "slot-checked.v1",
        [typeof(SweepSnapshot)] = "sweep-snapshot.v1",
        // coordinator ↔ worker messages
        [typeof(RegisterWorker)] = "register-worker.v1",
        [typeof(WorkerRegistered)] = "worker-registered.v1",
        [typeof(WorkerLeaving)] = "worker-leaving.v1",
        [typeof(RunTrial)] = "run-trial.v1",
        [typeof(StopTrial)] = "stop-trial.v1",
        [typeof(TestPointReported)] = "trial-progressed.v1", // its first name, kept on the wire
        [typeof(TrialCheckpointSaved)] = "trial-checkpoint-saved.v1",
        [typeof(TrialCheckpointRecorded)] = "trial-checkpoint-recorded.v1",
        [typeof(TrialEnded)] = "trial-ended.v1",
        [typeof(TrialEndRecorded)] = "trial-end-recorded.v1",
        [typeof(TrialCheckpointMissing)] = "trial-checkpoint-missing.v1",
        // agent ↔ worker process (the pipe between a slot's actor and its process)
        [typeof(WorkerProcessReady)] = "worker-process-ready.v1",
        [typeof(TrialLogLine)] = "trial-log-line.v1",
        // clients ↔ coordinator
        [typeof(StartSweep)] = "start-sweep.v2",
        [typeof(ResumeSweep)] = "resume-sweep.v1",
        [typeof(SweepAccepted)] = "sweep-accepted.v1",
        [typeof(SweepRefused)] = "sweep-refused.v1",
        [typeof(SubscribeToSweep)] = "subscribe-to-sweep.v1",
        [typeof(SweepFinished)] = "sweep-finished.v2",
        [typeof(SweepSubscribed)] = "sweep-subscribed.v1",
        [typeof(SweepHalted)] = "sweep-halted.v2",
        [typeof(SweepJournalFailed)] = "sweep-journal-failed.v1",
        [typeof(ExpectLocalSlots)] = "expect-local-slots.v1",
        [typeof(StopSweep)] = "stop-sweep.v1",
        [typeof(SweepStopped)] = "sweep-stopped.v2",
        [typeof(GetSweepState)] = "get-sweep-state.v1",
        // cluster director
        [typeof(OpenSweep)] = "open-sweep.v1",
        [typeof(SweepOpened)] = "sweep-opened.v1",
        [typeof(DirectorSweepOpened)] = "director-sweep-opened.v1",
    };

    private static readonly IReadOnlyDictionary<string, Type> TypeByManifest = ManifestByType.ToDictionary(p => p.Value, p => p.Key);

    /// <summary>The wire and journal format: camelCase, enums by name, NaN and infinities as named literals.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    /// <summary>Every type this serializer accepts: what the actor system binds it to.</summary>
    public static IEnumerable<Type> SerializableTypes => ManifestByType.Keys;

    public override int Identifier => SerializerId;

    /// <summary>
    /// One message as one line of text, <c>MANIFEST JSON</c>, for the pipe between a slot's actor and
    /// its worker process (the same allow-list and JSON as Akka's wire and the journal).
    /// </summary>
    /// <exception cref="ArgumentException">The message's type is not in the allow-list.</exception>
    public static string ToLine(ISweepMessage message)
    {
        var manifest = ManifestByType.TryGetValue(message.GetType(), out var known)
            ? known
            : throw new ArgumentException($"{message.GetType().FullName} is not in the sweep serializer's allow-list");
        return manifest + " " + JsonSerializer.Serialize(message, message.GetType(), Json);
    }

    /// <summary>
    /// The message of a line written by <see cref="ToLine"/>, or null for a line that is not one (an
    /// unknown manifest, malformed JSON, or any other text a process printed): the caller treats such
    /// a line as output to log, never as a crash.
    /// </summary>
    public static ISweepMessage? FromLine(string line)
    {
        int space = line.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0 || !TypeByManifest.TryGetValue(line[..space], out var type)) return null;
        try
        {
            return JsonSerializer.Deserialize(line.AsSpan(space + 1), type, Json) as ISweepMessage;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public override string Manifest(object o) =>
        ManifestByType.TryGetValue(o.GetType(), out var manifest)
            ? manifest
            : throw new ArgumentException($"{o.GetType().FullName} is not in the sweep serializer's allow-list");

    public override byte[] ToBinary(object obj)
    {
        Manifest(obj);
        // Through a stream rather than SerializeToUtf8Bytes: that one grows its buffer in the shared
        // ArrayPool, which then keeps a snapshot-sized array (16 MB at 10,000 trials) per thread for good.
        using var buffer = new MemoryStream();
        JsonSerializer.Serialize(buffer, obj, obj.GetType(), Json);
        return buffer.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest) => Deserialize(bytes, manifest);

    /// <summary>
    /// What <see cref="ToBinary"/> wrote under <paramref name="manifest"/>: the one way events, snapshots
    /// and messages are read back (Akka calls it through <see cref="FromBinary"/>; the journal's readers directly).
    /// </summary>
    /// <exception cref="System.Runtime.Serialization.SerializationException">The manifest is not in the allow-list, or the payload is empty or malformed.</exception>
    public static object Deserialize(byte[] bytes, string manifest)
    {
        if (!TypeByManifest.TryGetValue(manifest, out var type))
            throw new System.Runtime.Serialization.SerializationException($"unknown manifest '{manifest}': not in the sweep serializer's allow-list, refused");
        try
        {
            return JsonSerializer.Deserialize(bytes, type, Json)
                   ?? throw new System.Runtime.Serialization.SerializationException($"manifest '{manifest}': empty payload");
        }
        catch (JsonException e)
        {
            throw new System.Runtime.Serialization.SerializationException($"manifest '{manifest}': malformed payload ({e.Message})", e);
        }
    }
}
