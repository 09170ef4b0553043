using System.Globalization;
using System.Text.RegularExpressions;

namespace Sweep.Protocol.Training;

/// <summary>The type of a named parameter's value.</summary>
public enum ParameterKind
{
    /// <summary>A whole number (64-bit).</summary>
    Integer,

    /// <summary>A finite real number (double).</summary>
    Real,

    /// <summary>Any text.</summary>
    String,

    /// <summary><c>true</c> or <c>false</c>.</summary>
    Boolean,
}

/// <summary>
/// One typed value of a named parameter, held as its canonical invariant text (what a command
/// trial's program receives): an integer in decimal, a real in its shortest round-trip form
/// (<c>0.1</c>, <c>1E-05</c>), a boolean as <c>true</c>/<c>false</c>, a string as it is.
/// </summary>
public sealed record ParameterValue(ParameterKind Kind, string Text)
{
    /// <summary>An integer value.</summary>
    public static ParameterValue Integer(long value) => new(ParameterKind.Integer, value.ToString(CultureInfo.InvariantCulture));

    /// <summary>A real value.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is NaN or infinite.</exception>
    public static ParameterValue Real(double value) =>
        double.IsFinite(value) ? new(ParameterKind.Real, value.ToString("R", CultureInfo.InvariantCulture)) : throw new ArgumentOutOfRangeException(nameof(value), value, "a parameter's value must be finite");

    /// <summary>A string value.</summary>
    public static ParameterValue String(string value) => new(ParameterKind.String, value);

    /// <summary>A boolean value.</summary>
    public static ParameterValue Boolean(bool value) => new(ParameterKind.Boolean, value ? "true" : "false");

    /// <summary>
    /// The value a spec's literal means, typed by how it reads: <c>true</c>/<c>false</c> a boolean,
    /// a whole number (<c>128</c>) an integer, any other finite number (<c>0.1</c>, <c>1e-3</c>) a
    /// real, anything else a string.
    /// </summary>
    public static ParameterValue Parse(string text)
    {
        if (text is "true" or "false") return Boolean(text == "true");
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long whole)) return Integer(whole);
        if (NumberPattern.IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double real) && double.IsFinite(real)) return Real(real);
        return String(text);
    }

    /// <summary>The value as a real (an integer converts).</summary>
    /// <exception cref="InvalidOperationException">The value is a string or a boolean.</exception>
    public double AsReal() => Kind is ParameterKind.Real or ParameterKind.Integer
        ? double.Parse(Text, NumberStyles.Float, CultureInfo.InvariantCulture)
        : throw new InvalidOperationException($"{Describe()} is not a number");

    /// <summary>The value as an integer.</summary>
    /// <exception cref="InvalidOperationException">The value is not an integer.</exception>
    public long AsInteger() => Kind == ParameterKind.Integer
        ? long.Parse(Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)
        : throw new InvalidOperationException($"{Describe()} is not an integer");

    /// <summary>The value as a boolean.</summary>
    /// <exception cref="InvalidOperationException">The value is not a boolean.</exception>
    public bool AsBoolean() => Kind == ParameterKind.Boolean ? Text == "true" : throw new InvalidOperationException($"{Describe()} is not a boolean");

    /// <summary>The same value as a real, when it is an integer (a list mixing 1 and 0.5 is a list of reals); else itself.</summary>
    public ParameterValue WidenedToReal() => Kind == ParameterKind.Integer ? Real(AsReal()) : this;

    /// <summary>The kind in the spec's words: integer, real, string, boolean.</summary>
    public static string KindName(ParameterKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>"the real 0.1", for messages.</summary>
    public string Describe() => $"the {KindName(Kind)} {(Kind == ParameterKind.String ? $"\"{Text}\"" : Text)}";

    /// <inheritdoc/>
    public override string ToString() => Text;

    private static readonly Regex NumberPattern = new(@"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", RegexOptions.CultureInvariant);
}

/// <summary>One named parameter of a trial and its value.</summary>
public sealed record TrialParameter(string Name, ParameterValue Value);

/// <summary>
/// A trial's parameters beyond the well-known fields of <see cref="TrialSpec"/> (a command's or a
/// plug-in's <c>dropout</c>, <c>hidden</c>, <c>optimizer</c>), sorted by name, each name once.
/// Equal when they hold the same names and values.
/// </summary>
public sealed record TrialParameters
{
    /// <summary>The parameters, sorted by name (ordinal).</summary>
    public IReadOnlyList<TrialParameter> Items { get; }

    /// <param name="items">The parameters in any order.</param>
    /// <exception cref="ArgumentException">A name occurs twice, or is not a parameter name (<see cref="NameProblem"/>).</exception>
    public TrialParameters(IReadOnlyList<TrialParameter> items)
    {
        Items = [.. items.OrderBy(p => p.Name, StringComparer.Ordinal)];
        for (int i = 0; i < Items.Count; i++)
        {
            if (NameProblem(Items[i].Name) is { } problem) throw new ArgumentException($"parameter '{Items[i].Name}': {problem}", nameof(items));
            if (i > 0 && Items[i].Name == Items[i - 1].Name) throw new ArgumentException($"parameter '{Items[i].Name}' is given twice", nameof(items));
        }
    }

    /// <summary>The value of <paramref name="name"/>, or null when the trial has no such parameter.</summary>
    public ParameterValue? Get(string name) => Items.FirstOrDefault(p => p.Name == name)?.Value;

    /// <summary>
    /// What is wrong with <paramref name="name"/> as a parameter's name, or null: a letter, then
    /// letters, digits, '-' or '_' (it becomes a HOCON key, a <c>${name}</c> placeholder and an
    /// environment variable).
    /// </summary>
    public static string? NameProblem(string name) =>
        NamePattern.IsMatch(name) ? null : "a parameter's name is a letter, then letters, digits, '-' or '_'";

    /// <summary>The canonical form the trial id hashes: <c>name:kind=text</c>, comma-separated, in name order.</summary>
    public string Canonical() => string.Join(',', Items.Select(p => $"{p.Name}:{ParameterValue.KindName(p.Value.Kind)}={p.Value.Text}"));

    /// <inheritdoc/>
    public bool Equals(TrialParameters? other) => other is not null && Items.SequenceEqual(other.Items);

    /// <inheritdoc/>
    public override int GetHashCode() => Items.Aggregate(0, (hash, p) => HashCode.Combine(hash, p));

    private static readonly Regex NamePattern = new("^[A-Za-z][A-Za-z0-9_-]*$", RegexOptions.CultureInvariant);
}
