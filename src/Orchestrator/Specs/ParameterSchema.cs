using Sweep.Protocol;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Specs;

/// <summary>A value the spec gives a named parameter (a case field, a grid axis' element, a default), with where it was written.</summary>
internal sealed record GivenParameter(string Name, ParameterValue Value, SpecValue Where);

/// <summary>
/// The named parameters of a sweep (beyond the well-known fields of a trial) and the type of each:
/// every trial of the sweep has the same names, each with values of one type (a name whose values mix
/// integers and reals is real). Built from every value the spec gives, before any trial exists, so
/// that a clash is refused naming the key that breaks it.
/// </summary>
internal sealed class ParameterSchema
{
    private readonly SortedDictionary<string, ParameterKind> kinds;
    private readonly IReadOnlyDictionary<string, ParameterValue> defaults;

    private ParameterSchema(SortedDictionary<string, ParameterKind> kinds, IReadOnlyDictionary<string, ParameterValue> defaults)
    {
        this.kinds = kinds;
        this.defaults = defaults;
    }

    /// <summary>The parameters' names, sorted.</summary>
    public IReadOnlyCollection<string> Names => kinds.Keys;

    /// <summary>The models whose trials take named parameters: the user's own program and plug-in (what they read is up to them).</summary>
    public static bool Accepts(ModelKind model) => model is ModelKind.Command or ModelKind.Plugin;

    /// <summary>
    /// The value <paramref name="value"/> writes for parameter <paramref name="name"/>: one literal,
    /// typed by how it reads (<see cref="ParameterValue.Parse"/>).
    /// </summary>
    /// <exception cref="InvalidInputException">The name is not a parameter name, or the value is a list, an object or null.</exception>
    public static GivenParameter Read(string name, SpecValue value)
    {
        CheckName(name, value);
        if (value.Shape != HoconShape.Text) throw value.Error("expected one value: a number, true or false, or text");
        return new GivenParameter(name, ParameterValue.Parse(value.Text()), value);
    }

    /// <summary>Refuses <paramref name="name"/> as a named parameter's (at <paramref name="where"/>): not a parameter name, or a sweep-wide key.</summary>
    /// <exception cref="InvalidInputException">It is not one.</exception>
    public static void CheckName(string name, SpecValue where)
    {
        if (TrialParameters.NameProblem(name) is { } problem) throw where.Error(problem);
        if (CommandParameters.Keys.Contains(name) || name == CommandSpec.SpecDirectoryPlaceholder)
            throw where.Error($"{name} is set for the whole sweep (sweep.{name}), not here");
    }

    /// <summary>
    /// The schema of every value in <paramref name="given"/> (defaults first, then cases and grid
    /// axes, in spec order) with <paramref name="defaults"/> as the values of trials that do not give one.
    /// </summary>
    /// <exception cref="InvalidInputException">
    /// A value's type differs from the earlier values of its name, or two names become the same environment variable.
    /// </exception>
    public static ParameterSchema Build(IEnumerable<GivenParameter> given, IReadOnlyList<GivenParameter> defaults)
    {
        var kinds = new SortedDictionary<string, ParameterKind>(StringComparer.Ordinal);
        var firstOf = new Dictionary<string, GivenParameter>(StringComparer.Ordinal);
        var byVariable = new Dictionary<string, GivenParameter>(StringComparer.Ordinal);
        foreach (var p in defaults.Concat(given))
        {
            if (!firstOf.TryGetValue(p.Name, out var first))
            {
                string variable = CommandParameters.EnvironmentVariable(p.Name);
                if (byVariable.TryGetValue(variable, out var other))
                    throw p.Where.Error($"{p.Name} and {other.Name} ({other.Where.Path}) are the same environment variable {variable}: rename one");
                byVariable[variable] = p;
                firstOf[p.Name] = p;
                kinds[p.Name] = p.Value.Kind;
                continue;
            }
            var kind = kinds[p.Name];
            if (kind == p.Value.Kind) continue;
            if (kind is ParameterKind.Integer or ParameterKind.Real && p.Value.Kind is ParameterKind.Integer or ParameterKind.Real)
            {
                kinds[p.Name] = ParameterKind.Real;
                continue;
            }
            throw p.Where.Error($"{p.Value.Describe()}, where {first.Where.Path} gives {p.Name} {first.Value.Describe()}: every value of a parameter has one type");
        }
        return new ParameterSchema(kinds, defaults.ToDictionary(d => d.Name, d => d.Value, StringComparer.Ordinal));
    }

    /// <summary>
    /// A trial's parameters: <paramref name="given"/> and the defaults for the names it does not give,
    /// each of the name's type (an integer of a real parameter widened); null when the sweep has none.
    /// </summary>
    /// <param name="given">The values the trial's case or grid cell gives, by name.</param>
    /// <param name="missing">The error for a name the trial has no value for (there is no default).</param>
    public TrialParameters? Complete(IReadOnlyDictionary<string, ParameterValue> given, Func<string, InvalidInputException> missing)
    {
        if (kinds.Count == 0) return null;
        var items = new List<TrialParameter>(kinds.Count);
        foreach (var (name, kind) in kinds)
        {
            var value = given.GetValueOrDefault(name) ?? defaults.GetValueOrDefault(name) ?? throw missing(name);
            items.Add(new TrialParameter(name, kind == ParameterKind.Real ? value.WidenedToReal() : value));
        }
        return new TrialParameters(items);
    }

    /// <summary>The names with no default, which every case and every grid must give.</summary>
    public IEnumerable<string> WithoutDefault => kinds.Keys.Where(name => !defaults.ContainsKey(name));
}
