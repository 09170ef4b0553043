using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Coordination;

/// <summary>
/// Puts a sweep's definition back together from the parts of <see cref="StartSweep"/> (a large
/// sweep started from another node travels in parts: <see cref="StartSweep.InParts"/>). Pure: the
/// coordinator keeps the parts held so far and records the sweep only when a step gives it whole.
/// </summary>
public static class StartAssembly
{
    /// <summary>
    /// The outcome of one part: the parts to hold for the next one; after the last part, either the
    /// whole definition or why it cannot be had (a part missing or out of order, e.g. some went to a
    /// coordinator that died while the sweep started). Both null: more parts are to come, no answer yet.
    /// </summary>
    public sealed record Step(IReadOnlyList<StartSweep> Held, SweepDefinition? Whole, string? Problem);

    /// <summary>Adds <paramref name="part"/> to <paramref name="held"/>; parts come in order, 0 first.</summary>
    public static Step Add(IReadOnlyList<StartSweep> held, StartSweep part)
    {
        if (part.Parts < 1 || part.Part < 0 || part.Part >= part.Parts)
            return new([], null, $"part {part.Part} of {part.Parts} is not a part of a sweep's definition");
        IReadOnlyList<StartSweep>? next =
            part.Part == 0 ? [part]
            : held.Count == part.Part && held[0].Parts == part.Parts ? [.. held, part]
            : null;
        if (part.Part < part.Parts - 1) return new(next ?? [], null, null);
        if (next is null)
            return new([], null, $"the sweep's definition came in {part.Parts} parts and only some of them arrived (did the coordinator move while the sweep started?); nothing was recorded: run the same 'sweep run' again");
        return new([], next[0].Definition with { Trials = next.SelectMany(p => p.Definition.Trials).ToList() }, null);
    }
}
