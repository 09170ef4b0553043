using Sweep.Protocol.Events;
using Sweep.Protocol.Specs;

namespace Sweep.Protocol.Messages;

/// <summary>
/// Start a new sweep; refused when the sweep id already has events. A definition too large for one
/// remote message (Akka.Remote's frame is 128,000 bytes; a trial is about 375 bytes of JSON) travels
/// in parts (<see cref="InParts"/>): part <paramref name="Part"/> of <paramref name="Parts"/> (0-based)
/// carries the definition with a consecutive slice of its trials. The coordinator records the sweep
/// once it holds every part, in order, and answers the last one; nothing is recorded otherwise.
/// </summary>
/// <param name="Definition">The sweep, or for a part its slice of <see cref="SweepDefinition.Trials"/>.</param>
/// <param name="Part">0 to <paramref name="Parts"/> − 1.</param>
/// <param name="Parts">How many parts the definition was cut into (1: it is whole).</param>
public sealed record StartSweep(SweepDefinition Definition, int Part = 0, int Parts = 1) : ISweepMessage
{
    /// <summary>The most serialized bytes of trials a part carries: half of Akka.Remote's default frame, leaving room for the rest of the definition.</summary>
    public const int MaxPartBytes = 64_000;

    /// <summary>
    /// Cuts <paramref name="definition"/> into parts whose trials take at most
    /// <paramref name="maxBytes"/> bytes of wire JSON each (a single larger trial gets a part of its
    /// own); concatenating the parts' trials in order gives back the definition's. One part when it
    /// all fits.
    /// </summary>
    public static IReadOnlyList<StartSweep> InParts(SweepDefinition definition, int maxBytes = MaxPartBytes)
    {
        var slices = new List<List<TrialDefinition>> { new() };
        long bytes = 0;
        foreach (var trial in definition.Trials)
        {
            var size = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(trial, Serialization.SweepSerializer.Json).Length;
            if (bytes + size > maxBytes && slices[^1].Count > 0)
            {
                slices.Add([]);
                bytes = 0;
            }
            slices[^1].Add(trial);
            bytes += size;
        }
        return slices.Select((slice, i) => new StartSweep(definition with { Trials = slice }, i, slices.Count)).ToList();
    }
}

/// <summary>Continue a sweep from its journal: finished trials stay finished, running ones continue from their checkpoints.</summary>
public sealed record ResumeSweep : ISweepMessage;

/// <summary>
/// The coordinator took the sweep on; <paramref name="Remaining"/> trials are still to finish.
/// <paramref name="Model"/> is what its trials train (null from coordinators before 2026-12-01): a
/// resuming `sweep` starts its worker processes from it, before it has read the sweep's state.
/// </summary>
public sealed record SweepAccepted(string SweepId, int Trials, int Remaining, ModelKind? Model = null) : ISweepMessage;

/// <summary>The coordinator refused (unknown sweep id, id already taken, …); nothing was persisted.</summary>
public sealed record SweepRefused(string SweepId, string Reason) : ISweepMessage;

/// <summary>
/// The sender is answered <see cref="SweepSubscribed"/>, then receives every event the coordinator
/// persists after that, then <see cref="SweepFinished"/> or <see cref="SweepHalted"/>. No message of
/// this exchange holds the sweep's state: a subscriber on another node reads it from the journal
/// (a 10,000-trial state is megabytes, far over Akka.Remote's frame size).
/// </summary>
public sealed record SubscribeToSweep : ISweepMessage;

/// <summary>
/// The answer to <see cref="SubscribeToSweep"/>: every event up to <paramref name="SequenceNr"/> is
/// in the journal (read the state up to it there); every event after it will be sent to the subscriber.
/// </summary>
public sealed record SweepSubscribed(string SweepId, long SequenceNr) : ISweepMessage;

/// <summary>Every trial of <paramref name="SweepId"/> ended and the sweep is recorded Completed (its state is in the journal).</summary>
public sealed record SweepFinished(string SweepId) : ISweepMessage;

/// <summary>
/// The sweep cannot go on (every local worker slot failed its self-test) and was interrupted with
/// <paramref name="Reason"/> (recorded in the journal); it continues with `sweep resume` once the cause is fixed.
/// </summary>
public sealed record SweepHalted(string SweepId, string Reason) : ISweepMessage;

/// <summary>
/// Local mode: this process starts <paramref name="Count"/> worker slots and no other will come, so
/// when all of them have registered unhealthy the sweep is halted (<see cref="SweepHalted"/>). Not
/// sent in a cluster, where healthy workers may still join.
/// </summary>
public sealed record ExpectLocalSlots(int Count) : ISweepMessage;

/// <summary>Stop dispatching, stop running attempts with a checkpoint, persist, then answer <see cref="SweepStopped"/>.</summary>
public sealed record StopSweep : ISweepMessage;

/// <summary>The sweep is interrupted and fully persisted (its state is in the journal).</summary>
public sealed record SweepStopped(string SweepId) : ISweepMessage;

/// <summary>
/// Ask for the sweep's state; the answer is a <see cref="SweepSnapshot"/>, or <see cref="SweepRefused"/>
/// for an unknown sweep. In-process only (tests, tools): the whole state does not fit one remote
/// message; other nodes read it from the journal.
/// </summary>
public sealed record GetSweepState : ISweepMessage;

/// <summary>
/// Cluster mode: make <paramref name="SweepId"/> the sweep this cluster runs (one at a time).
/// Answered by <see cref="SweepOpened"/>, or <see cref="SweepRefused"/> while another sweep is unfinished.
/// </summary>
public sealed record OpenSweep(string SweepId) : ISweepMessage;

/// <summary>The cluster's coordinator now runs <paramref name="SweepId"/>; further commands reach it.</summary>
public sealed record SweepOpened(string SweepId) : ISweepMessage;

/// <summary>The director's own record of which sweep the cluster runs, so a new singleton knows it after a failover.</summary>
public sealed record DirectorSweepOpened(string SweepId, DateTimeOffset At) : ISweepMessage;

/// <summary>
/// The journal failed (a write, a read, or the sweep's ownership claim): the coordinator of
/// <paramref name="SweepId"/> stopped the running trials and stopped itself. <paramref name="Cause"/>
/// is a phrase ("disk full (SQLite error 13: database or disk is full)"), <paramref name="Advice"/>
/// what to do before `sweep resume` ("free space"). Nothing recorded is lost.
/// </summary>
public sealed record SweepJournalFailed(string SweepId, string Cause, string Advice) : ISweepMessage;
