using System.Globalization;
using System.Text.RegularExpressions;
using Akka.Configuration.Hocon;
using Sweep.Protocol;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Specs;

/// <summary>One <c>--set KEY=VALUE</c> flag, checked on its own before it is merged into the spec.</summary>
internal sealed record SpecOverride(string Raw, string Key, string Value, HoconObject Tree)
{
    private static readonly Regex KeyPath = new(@"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", RegexOptions.CultureInvariant);

    public string Label => $"--set {Raw}";

    /// <summary>The line appended to the spec text: later lines win in HOCON, so later flags win over the file and earlier flags.</summary>
    public string AsHoconLine => $"{Key} = {Value}";

    /// <summary>Reads one flag; <paramref name="unknownKey"/> says what is wrong with a key path the spec does not have (null: it has it).</summary>
    public static SpecOverride Parse(string raw, Func<string, string?> unknownKey)
    {
        int equals = raw.IndexOf('=');
        if (equals < 0) throw Fail(raw, "expected KEY=VALUE, e.g. sweep.max-iter=300");
        string key = raw[..equals].Trim();
        string value = raw[(equals + 1)..].Trim();
        if (key.Length == 0) throw Fail(raw, "the key before '=' is empty");
        if (!KeyPath.IsMatch(key)) throw Fail(raw, $"'{key}' is not a key path like sweep.max-iter");
        if (unknownKey(key) is { } unknown) throw Fail(raw, $"{key}: {unknown}");
        if (value.Length == 0) throw Fail(raw, $"{key}: the value after '=' is empty");
        if (value.Contains("${", StringComparison.Ordinal)) throw Fail(raw, $"{key}: substitutions are not supported in --set values");

        var tree = HoconDocument.ParseText($"{key} = {value}", problem => Fail(raw, problem));
        // The value must not smuggle in other keys (a newline inside the flag would otherwise add lines to the spec).
        var node = tree;
        foreach (var segment in key.Split('.'))
        {
            if (node.Items.Count != 1 || !node.Items.TryGetValue(segment, out var child))
                throw Fail(raw, $"{key}: the value must be a single HOCON value");
            node = HoconNodes.AsObject(child);
            if (node is null) break;
        }
        return new SpecOverride(raw, key, value, tree);
    }

    /// <summary>
    /// Whether this flag wrote the value at <paramref name="path"/> (or a value that contains it), so
    /// that an error there is blamed on the flag rather than on the file.
    /// </summary>
    public bool Covers(string path)
    {
        int index = path.IndexOf('[');
        string keyPath = index < 0 ? path : path[..index];
        var node = Tree;
        foreach (var segment in keyPath.Split('.'))
        {
            if (!node.Items.TryGetValue(segment, out var value)) return false;
            var child = HoconNodes.AsObject(value);
            if (child is null) return true; // a scalar or a list replaces everything below it
            node = child;
        }
        // An object the flag wrote into also holds the file's keys: blame the flag only if it set the object itself or an ancestor.
        return keyPath == Key || keyPath.StartsWith(Key + ".", StringComparison.Ordinal);
    }

    private static InvalidInputException Fail(string raw, string problem) => new(SpecSource.OneLine($"--set {raw}: {problem}"));
}

/// <summary>Where a spec came from: the file and the --set flags, so that every error names the one that caused it.</summary>
internal sealed class SpecSource(string fileName, IReadOnlyList<SpecOverride> overrides)
{
    /// <summary>The last flag that wrote <paramref name="path"/>, or null when the file did.</summary>
    public SpecOverride? OverrideOf(string path) => overrides.LastOrDefault(o => o.Covers(path));

    /// <summary>The flag that wrote <paramref name="path"/>, or the file.</summary>
    public string Label(string path) => OverrideOf(path)?.Label ?? fileName;

    public InvalidInputException Error(string path, string problem) =>
        new(OneLine($"{Label(path)}: {path}: {problem}"));

    public InvalidInputException FileError(string problem) => new(OneLine($"{fileName}: {problem}"));

    /// <summary>Error messages are printed as one line: parser messages and triple-quoted values can hold newlines.</summary>
    public static string OneLine(string text) => Regex.Replace(text, @"\s+", " ").Trim();
}

/// <summary>Where include statements are read from: the including file's folder, and the files included on the way there.</summary>
internal sealed record IncludeSite(string Directory, IReadOnlyList<string> Chain)
{
    /// <summary>Includes inside includes; deeper than this is a mistake, not a spec.</summary>
    public const int MaxDepth = 16;

    /// <summary>Includes in the text of <paramref name="file"/>, included from here.</summary>
    public IncludeSite Into(string file) => new(Path.GetDirectoryName(file)!, [.. Chain, file]);
}

/// <summary>
/// Parses spec text with Akka's HOCON parser, after <see cref="HoconText"/> has checked it and put
/// it in the form that parser reads correctly; include statements are read here.
/// </summary>
internal static class HoconDocument
{
    private static readonly Regex AkkaPosition = new(@"^(?<what>.*?) at position (?<position>\d+):", RegexOptions.Singleline | RegexOptions.CultureInvariant);

    /// <summary>
    /// The root object of <paramref name="text"/>; syntax errors become <paramref name="fail"/>(message).
    /// <c>include "file"</c> reads a file relative to <paramref name="includes"/> (null: includes are refused).
    /// </summary>
    public static HoconObject ParseText(string text, Func<string, InvalidInputException> fail, IncludeSite? includes = null) =>
        HoconNodes.AsObject(ParseRoot(text, fail, includes).Value) ?? new HoconObject();

    private static HoconRoot ParseRoot(string text, Func<string, InvalidInputException> fail, IncludeSite? includes)
    {
        if (HoconText.Normalise(text, out var normalised) is { } problem) throw fail(problem);
        try
        {
            return Parser.Parse(normalised, name => Include(name, includes));
        }
        catch (Exception e) when (e is IncludeException or InvalidInputException)
        {
            // A problem in an included file, already described with the file.
            throw fail(e.Message);
        }
        catch (Exception e)
        {
            // The parser throws FormatException, ConfigurationException, and worse (NullReferenceException) on bad input: all are the user's syntax error.
            throw fail(Describe(e, text));
        }
    }

    /// <summary>
    /// The root of an included file. Its substitutions are resolved within that file (and are not
    /// handed back, so that Akka's parser does not re-resolve them under a wrong path).
    /// </summary>
    private static HoconRoot Include(string name, IncludeSite? site)
    {
        string label = $"include \"{name}\"";
        if (site is null) throw new IncludeException($"{label}: includes are not supported in --set values (put it in the spec file)");
        if (name.Length == 0) throw new IncludeException($"{label}: the file name is empty");
        string path = Path.GetFullPath(name, site.Directory);
        // Without an extension HOCON looks for name.conf (and .json, .properties); a spec's includes are HOCON files.
        if (!File.Exists(path) && Path.GetExtension(path).Length == 0 && File.Exists(path + ".conf")) path += ".conf";
        // HOCON ignores a missing include; a spec refuses it, so that a typo never silently drops settings.
        if (!File.Exists(path)) throw new IncludeException($"{label}: file not found: {path}");
        if (site.Chain.Contains(path, StringComparer.Ordinal))
            throw new IncludeException($"{label}: an include cycle ({string.Join(" -> ", site.Chain.Append(path).Select(Path.GetFileName))})");
        if (site.Chain.Count >= IncludeSite.MaxDepth) throw new IncludeException($"{label}: includes nested more than {IncludeSite.MaxDepth} deep");
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IncludeException($"{label}: cannot read {path}: {e.Message}");
        }
        var root = ParseRoot(text, problem => new InvalidInputException($"{label}: {path}: {problem}"), site.Into(path));
        if (HoconNodes.AsObject(root.Value) is null) throw new IncludeException($"{label}: {path} does not hold an object");
        return new HoconRoot(root.Value);
    }

    /// <summary>Akka reports "at position N" followed by the line and a caret; a line and column read better on one line.</summary>
    private static string Describe(Exception e, string text)
    {
        var match = AkkaPosition.Match(e.Message);
        if (match.Success && int.TryParse(match.Groups["position"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int position))
            return $"{match.Groups["what"].Value} at {HoconText.Position(text, position)}";
        return e is NullReferenceException ? "the HOCON parser could not read this text" : e.Message;
    }
}

/// <summary>A problem with an include statement or the file it includes, thrown through Akka's parser and reported with the including file.</summary>
internal sealed class IncludeException(string message) : Exception(message);

/// <summary>What a HOCON value holds once whitespace and substitutions are looked through.</summary>
internal enum HoconShape { Nothing, Null, Text, List, Object, Mixed }

/// <summary>Reading Akka's HOCON tree, whose values are lists of elements (text pieces, lists, objects, substitutions).</summary>
internal static class HoconNodes
{
    private const int MaxSubstitutionDepth = 32;

    /// <summary>The object a value holds, or null when it holds anything else.</summary>
    public static HoconObject? AsObject(HoconValue value)
    {
        var elements = Significant(value, 0);
        return elements.Count == 1 && elements[0] is HoconObject o ? o : null;
    }

    /// <summary>The elements of a value with substitutions replaced by what they refer to and blank text dropped.</summary>
    public static IReadOnlyList<IHoconElement> Significant(HoconValue value, int depth)
    {
        var result = new List<IHoconElement>();
        foreach (var element in Expand(value, depth))
        {
            if (element is HoconLiteral literal && string.IsNullOrWhiteSpace(literal.Value)) continue;
            result.Add(element);
        }
        return result;
    }

    /// <summary>The elements of a value with substitutions replaced, whitespace kept (it belongs to concatenated text).</summary>
    public static IEnumerable<IHoconElement> Expand(HoconValue value, int depth)
    {
        foreach (var element in value.Values)
        {
            if (element is not HoconSubstitution substitution)
            {
                yield return element;
                continue;
            }
            // Akka resolves ${a} inside a itself to a cycle rather than an error; a bounded depth turns that into one.
            if (depth >= MaxSubstitutionDepth || substitution.ResolvedValue is null)
                throw new SubstitutionException(substitution.Path);
            foreach (var inner in Expand(substitution.ResolvedValue, depth + 1)) yield return inner;
        }
    }
}

/// <summary>A substitution that never reaches a value (it refers to itself); caught and reported with the key that uses it.</summary>
internal sealed class SubstitutionException(string path) : Exception($"the substitution ${{{path}}} refers to itself");

/// <summary>One value of the spec at a known path, read with the type the schema expects.</summary>
internal sealed class SpecValue(string path, HoconValue value, SpecSource source)
{
    private IReadOnlyList<IHoconElement>? elements;
    private HoconShape? shape;

    public string Path => path;

    public SpecSource Source => source;

    private IReadOnlyList<IHoconElement> Elements => elements ??= Guard(() => HoconNodes.Significant(value, 0));

    public HoconShape Shape => shape ??= ShapeOf(Elements);

    private HoconShape ShapeOf(IReadOnlyList<IHoconElement> all)
    {
        // A quoted "" is text (an empty one), where `key =` followed by nothing is no value at all.
        if (all.Count == 0) return value.Values.Any(e => e is HoconLiteral) ? HoconShape.Text : HoconShape.Nothing;
        if (all.All(e => e is HoconLiteral)) return RawText() == "null" ? HoconShape.Null : HoconShape.Text;
        if (all.All(e => e is HoconArray)) return HoconShape.List;
        if (all.Count == 1 && all[0] is HoconObject) return HoconShape.Object;
        return HoconShape.Mixed;
    }

    public string Text() => Shape == HoconShape.Text ? RawText() : throw Expected("a string");

    public int Int(Rule rule)
    {
        var text = Shape == HoconShape.Text ? RawText() : throw Expected("a whole number");
        return WholeNumber(text) is { } number ? Check(number, rule) : throw Expected(NumberPattern.IsMatch(text) && IsLarge(text) ? $"a whole number up to {int.MaxValue}" : "a whole number");
    }

    /// <summary>
    /// A whole number as a spec or a --set flag may write it: <c>300</c>, or any number whose value is
    /// whole, such as <c>1e3</c>, <c>2.0E2</c> or <c>300.0</c>; null for anything else (<c>1e-3</c>,
    /// <c>16.5</c>, text) and for numbers outside the range of an int.
    /// </summary>
    internal static int? WholeNumber(string text)
    {
        if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int plain)) return plain;
        if (!NumberPattern.IsMatch(text) || !decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out decimal value)) return null;
        return value == decimal.Truncate(value) && value is >= int.MinValue and <= int.MaxValue ? (int)value : null;
    }

    /// <summary>Whether a number's magnitude is at least 1 (so that a whole number refused for its size is told so).</summary>
    private static bool IsLarge(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && Math.Abs(d) >= 1 && (!double.IsFinite(d) || d == Math.Floor(d));

    public double Number(Rule rule)
    {
        var text = Shape == HoconShape.Text ? RawText() : throw Expected("a number");
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double number) || !double.IsFinite(number))
            throw Expected("a number");
        return Check(number, rule);
    }

    /// <summary>Seconds: a plain number, or a HOCON duration such as <c>2s</c>, <c>500ms</c> or <c>1 minute</c>.</summary>
    public double Seconds(Rule rule)
    {
        var text = Shape == HoconShape.Text ? RawText() : throw Expected("a duration (seconds, or e.g. 2s, 500ms)");
        var match = Duration.Match(text);
        if (!match.Success || !double.TryParse(match.Groups["amount"].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double amount))
            throw Expected("a duration (seconds, or e.g. 2s, 500ms)");
        double seconds = amount * UnitSeconds(match.Groups["unit"].Value);
        return Check(seconds, rule);
    }

    public T Choice<T>(IReadOnlyDictionary<string, T> choices)
    {
        var text = Shape == HoconShape.Text ? RawText() : throw Expected($"one of {string.Join(", ", choices.Keys)}");
        return choices.TryGetValue(text, out var choice) ? choice : throw Expected($"one of {string.Join(", ", choices.Keys)}");
    }

    public SpecObject Object() =>
        Shape == HoconShape.Object ? new SpecObject(path, (HoconObject)Elements[0], source) : throw Expected("an object");

    /// <summary>The elements of a list; with <paramref name="allowSingle"/>, a lone value counts as a one-element list.</summary>
    public IReadOnlyList<SpecValue> List(bool allowSingle)
    {
        switch (Shape)
        {
            case HoconShape.List:
                // Akka's parser turns the blank inside `[ ]` into one empty element: an empty list has none.
                var items = Elements.Cast<HoconArray>().SelectMany(array => array)
                    .Where(item => !item.Values.All(e => e is HoconLiteral literal && string.IsNullOrWhiteSpace(literal.Value)))
                    .ToList();
                return items.Select((item, i) => new SpecValue($"{path}[{i}]", item, source)).ToList();
            case HoconShape.Text when allowSingle:
                return [this];
            default:
                throw Expected("a list");
        }
    }

    public InvalidInputException Error(string problem) => source.Error(path, problem);

    /// <summary>A number as JSON and HOCON write it (a leading '+' allowed): digits, an optional fraction, an optional exponent.</summary>
    private static readonly Regex NumberPattern = new(@"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", RegexOptions.CultureInvariant);

    private static readonly Regex Duration = new(
        @"^(?<amount>[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)\s*(?<unit>ns|nanos?|nanoseconds?|us|micros?|microseconds?|ms|millis?|milliseconds?|s|seconds?|m|minutes?|h|hours?|d|days?)?$",
        RegexOptions.CultureInvariant);

    private static double UnitSeconds(string unit) => unit switch
    {
        "" or "s" or "second" or "seconds" => 1,
        "ms" or "milli" or "millis" or "millisecond" or "milliseconds" => 1e-3,
        "us" or "micro" or "micros" or "microsecond" or "microseconds" => 1e-6,
        "ns" or "nano" or "nanos" or "nanosecond" or "nanoseconds" => 1e-9,
        "m" or "minute" or "minutes" => 60,
        "h" or "hour" or "hours" => 3600,
        _ => 86400,
    };

    private T Check<T>(T number, Rule rule) where T : IConvertible
    {
        double value = number.ToDouble(CultureInfo.InvariantCulture);
        return rule.Holds(value) ? number : throw Error(string.Create(CultureInfo.InvariantCulture, $"{rule.Requirement}, got {value}"));
    }

    private string RawText() =>
        string.Concat(Guard(() => HoconNodes.Expand(value, 0).Cast<HoconLiteral>().Select(l => l.Value).ToList())).Trim();

    private InvalidInputException Expected(string what) => Error($"expected {what}, got {Describe()}");

    private string Describe() => Shape switch
    {
        HoconShape.Nothing => "nothing",
        HoconShape.Null => "null",
        HoconShape.List => "a list",
        HoconShape.Object => "an object",
        HoconShape.Mixed => "a mix of text, lists and objects",
        _ => DescribeText(RawText()),
    };

    /// <summary>Numbers as they are, text quoted (so that "" and " " show), both cut short to keep the message one readable line.</summary>
    private static string DescribeText(string text)
    {
        string shown = text.Length > 40 ? text[..40] + "…" : text;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _) ? shown : $"\"{shown}\"";
    }

    private T Guard<T>(Func<T> read)
    {
        try
        {
            return read();
        }
        catch (SubstitutionException e)
        {
            throw Error(e.Message);
        }
    }
}

/// <summary>One object of the spec at a known path: its keys are checked against the schema before any is read.</summary>
internal sealed class SpecObject(string path, HoconObject hocon, SpecSource source)
{
    public string Path => path;

    public bool IsEmpty => hocon.Items.Count == 0;

    /// <summary>Refuses the first key (in file order) that the schema does not know, suggesting the closest known one.</summary>
    public void RejectUnknownKeys(IReadOnlyCollection<string> known, string? hint = null)
    {
        foreach (var key in hocon.Items.Keys)
        {
            if (known.Contains(key)) continue;
            string suggestion = KeySuggestion.Closest(known, key) is { } closest ? $" (did you mean {closest}?)" : hint ?? "";
            throw source.Error(Child(key), "unknown key" + suggestion);
        }
    }

    public string Child(string key) => path.Length == 0 ? key : $"{path}.{key}";

    /// <summary>The keys in file order.</summary>
    public IEnumerable<string> Keys => hocon.Items.Keys;

    /// <summary>
    /// In an object whose other keys are the user's own (named parameters), refuses the first key
    /// that is a near miss of a known one (<see cref="KeySuggestion.NearMiss"/>): <c>batch_size</c>
    /// is a typo of <c>batch-size</c>, not a parameter.
    /// </summary>
    public void RejectNearMisses(IReadOnlyCollection<string> known)
    {
        foreach (var key in hocon.Items.Keys)
        {
            if (!known.Contains(key) && KeySuggestion.NearMiss(known, key) is { } closest)
                throw source.Error(Child(key), $"unknown key (did you mean {closest}?)");
        }
    }

    /// <summary>The value at <paramref name="key"/>; absent and HOCON null both mean "not given" (the default applies).</summary>
    public SpecValue? Get(string key)
    {
        if (!hocon.Items.TryGetValue(key, out var raw)) return null;
        var value = new SpecValue(Child(key), raw, source);
        return value.Shape == HoconShape.Null ? null : value;
    }

    public SpecValue Required(string key, string why = "required") => Get(key) ?? throw Missing(key, why);

    public InvalidInputException Missing(string key, string why) => source.Error(Child(key), $"missing ({why})");

    public int Int(string key, int fallback, Rule rule) => Get(key)?.Int(rule) ?? fallback;

    public int? OptionalInt(string key, Rule rule) => Get(key)?.Int(rule);

    public double Number(string key, double fallback, Rule rule) => Get(key)?.Number(rule) ?? fallback;

    public double? OptionalNumber(string key, Rule rule) => Get(key)?.Number(rule);

    /// <summary>A trial field's value (its key, its rule), or <paramref name="fallback"/> when absent.</summary>
    public int Int(TrialField field, int fallback) => Int(field.Key, fallback, field.Rule);

    /// <summary>A trial field's value (its key, its rule), or null when absent.</summary>
    public int? OptionalInt(TrialField field) => OptionalInt(field.Key, field.Rule);

    /// <summary>A trial field's value (its key, its rule), or <paramref name="fallback"/> when absent.</summary>
    public double Number(TrialField field, double fallback) => Number(field.Key, fallback, field.Rule);

    public T Choice<T>(string key, T fallback, IReadOnlyDictionary<string, T> choices) => Get(key) is { } value ? value.Choice(choices) : fallback;

    public string RequiredName(string key)
    {
        var value = Required(key);
        var text = value.Text();
        return text.Length > 0 ? text : throw value.Error("must not be empty");
    }

    public SpecObject? Object(string key) => Get(key)?.Object();

    public InvalidInputException Error(string problem) => source.Error(path, problem);

}

/// <summary>The "did you mean" of unknown keys, in spec files and --set flags alike.</summary>
internal static class KeySuggestion
{
    /// <summary>The known key closest to <paramref name="key"/>, when it is at most two edits away; null otherwise.</summary>
    public static string? Closest(IEnumerable<string> known, string key) =>
        known.Select(k => (Key: k, Distance: EditDistance(k, key))).Where(k => k.Distance <= 2).OrderBy(k => k.Distance).FirstOrDefault().Key;

    /// <summary>
    /// The known key that <paramref name="key"/> misspells, where a key of the user's own is also
    /// allowed: one edit away (<c>seeds</c>), or the same once case, '-' and '_' are ignored
    /// (<c>batch_size</c>, <c>BaseLR</c>); null otherwise (<c>step</c> is not <c>seed</c>).
    /// </summary>
    public static string? NearMiss(IEnumerable<string> known, string key)
    {
        static string Bare(string k) => new([.. k.Where(char.IsLetterOrDigit).Select(char.ToLowerInvariant)]);
        return known.FirstOrDefault(k => EditDistance(k, key) <= 1 || Bare(k) == Bare(key));
    }

    private static int EditDistance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            previous = current;
        }
        return previous[b.Length];
    }
}
