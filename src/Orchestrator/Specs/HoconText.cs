namespace Sweep.Orchestrator.Specs;

/// <summary>
/// Checks HOCON text against the rules of the HOCON specification that Akka's parser gets wrong,
/// and rewrites it into the form that parser reads correctly. Every character stays at its index,
/// so a position in an error, from here or from Akka's parser, points into the text as written.
/// </summary>
/// <remarks>
/// What it rewrites (HOCON accepts all of these; Akka's parser fails, hangs or drops text on them):
/// <list type="bullet">
/// <item>Every comma that separates list elements or object fields becomes a newline, which HOCON
/// treats the same. Akka's parser refuses a comma after a <c>key { … }</c> field, after an include,
/// or after a newline, and turns a comma after a newline inside a list into an empty element.</item>
/// <item>Braces around the whole text are blanked out: Akka's parser drops everything after the
/// root's closing brace (the <c>--set</c> lines appended to a spec, for one).</item>
/// <item><c>include required("f")</c> and <c>include file("f")</c> become <c>include "f"</c>.</item>
/// </list>
/// What it refuses, with the line and column: unbalanced brackets, unterminated strings, a comma with
/// nothing before it (<c>[,1]</c>, <c>[1,,2]</c>, <c>{,a=1}</c>; one trailing comma is allowed),
/// characters that cannot start a list element (Akka's parser loops forever on them), a second
/// <c>=</c> in one field (two fields on one line without a comma, which Akka's parser silently
/// garbles), a key without a value, a list after a key without <c>=</c>, text after the root
/// object's closing brace, and what Akka's parser cannot do: <c>+=</c>, <c>${?path}</c>, and
/// <c>include url(…)</c> or <c>classpath(…)</c>.
/// </remarks>
internal static class HoconText
{
    private const int MaxNesting = 64;

    /// <summary>Characters that cannot start a list element. Akka's parser loops forever on them inside a list instead of failing.</summary>
    private const string NotInList = "=:$`^?!@*&\\";

    private const string Include = "include";

    /// <summary>An open object or list, and where its current element stands.</summary>
    private sealed class Frame(char kind, int open)
    {
        /// <summary><c>{</c> for an object, <c>[</c> for a list.</summary>
        public char Kind { get; } = kind;

        /// <summary>The index of its opening bracket; -1 for the root object without braces.</summary>
        public int Open { get; } = open;

        /// <summary>Whether the braces around the whole text opened this object (they are blanked out).</summary>
        public bool IsRootBraces { get; init; }

        /// <summary>Something stands since the opening bracket or the last comma (so a comma may follow).</summary>
        public bool HasElement { get; set; }

        /// <summary>Objects: the current field's key has begun.</summary>
        public bool KeyStarted { get; set; }

        /// <summary>Objects: the current field is past its key (after '=', ':' or the '{' of <c>key { … }</c>).</summary>
        public bool InValue { get; set; }

        /// <summary>Objects: the current field's value has begun (a newline then ends the field).</summary>
        public bool ValueStarted { get; set; }

        /// <summary>Objects: a newline followed the key (its '=' or '{' may still come on a later line, but no more key).</summary>
        public bool KeyLineEnded { get; set; }

        /// <summary>Objects: where the current field begins.</summary>
        public int FieldStart { get; set; }

        /// <summary>Objects: the current field's key, once its value has begun (for messages).</summary>
        public string Key { get; set; } = "";

        public bool IsObject => Kind == '{';

        public void NewField(int start)
        {
            KeyStarted = InValue = ValueStarted = KeyLineEnded = false;
            FieldStart = start;
            Key = "";
        }

        public void StartValue(string text, int at)
        {
            Key = text[FieldStart..at].Trim();
            InValue = true;
        }

        /// <summary>Something other than whitespace, a comment or a separator, at <paramref name="at"/>.</summary>
        public void Content(string text, int at)
        {
            if (IsObject && KeyLineEnded && !InValue) throw new Problem(MissingValue(text, at)!);
            HasElement = true;
            if (!IsObject) return;
            if (InValue) ValueStarted = true;
            else KeyStarted = true;
        }

        /// <summary>A field whose key has no value yet (<c>{ a }</c>): Akka's parser reads on past the brace.</summary>
        public string? MissingValue(string text, int at)
        {
            if (!IsObject || !KeyStarted || InValue) return null;
            string key = text[FieldStart..at].Trim();
            int newline = key.IndexOf('\n');
            if (newline >= 0) key = key[..newline].TrimEnd();
            return $"{Position(text, at)}: the key {key} has no value (expected '=', ':' or '{{' after it)";
        }
    }

    /// <summary>Thrown inside the scan and turned into its result.</summary>
    private sealed class Problem(string message) : Exception(message);

    /// <summary>
    /// The first problem of <paramref name="text"/> ("line 2, column 5: …"), or null with
    /// <paramref name="normalised"/> set to the text to give Akka's parser.
    /// </summary>
    public static string? Normalise(string text, out string normalised)
    {
        try
        {
            normalised = Scan(text);
            return null;
        }
        catch (Problem problem)
        {
            normalised = text;
            return problem.Message;
        }
    }

    private static string Scan(string text)
    {
        var output = text.ToCharArray();
        var frames = new Stack<Frame>();
        frames.Push(new Frame('{', -1));
        int first = NextSignificant(text, 0);
        if (first >= 0 && text[first] == '[') throw Fail(text, first, "a spec is an object (sweep { … }), not a list");
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            char next = i + 1 < text.Length ? text[i + 1] : '\0';
            var frame = frames.Peek();
            switch (c)
            {
                case '#':
                case '/' when next == '/':
                    i = EndOfLine(text, i) - 1;
                    break;
                case '\n':
                    if (frame.IsObject && frame.ValueStarted) frame.NewField(i + 1);
                    else if (frame.IsObject && frame.KeyStarted && !frame.InValue) frame.KeyLineEnded = true;
                    break;
                case '"' when string.CompareOrdinal(text, i, "\"\"\"", 0, 3) == 0:
                    int close = text.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal);
                    if (close < 0) throw Fail(text, i, "unterminated \"\"\" string");
                    frame.Content(text, i);
                    i = close + 2;
                    break;
                case '"':
                    frame.Content(text, i);
                    i = EndOfQuoted(text, i) ?? throw Fail(text, i, "unterminated string");
                    break;
                case '$' when next == '{':
                    int end = text.IndexOfAny(['}', '\n'], i);
                    if (end < 0 || text[end] != '}') throw Fail(text, i, "unterminated substitution ${...}");
                    if (i + 2 < text.Length && text[i + 2] == '?') throw Fail(text, i, "optional substitutions ${?...} are not supported in sweep specs");
                    frame.Content(text, i);
                    i = end;
                    break;
                case '{':
                    if (i == first)
                    {
                        // Braces around the whole text: the root object itself.
                        output[i] = ' ';
                        frames.Push(new Frame('{', i) { IsRootBraces = true, FieldStart = i + 1 });
                        break;
                    }
                    if (frames.Count > MaxNesting) throw Fail(text, i, $"nested more than {MaxNesting} levels deep");
                    if (frame.IsObject && !frame.InValue)
                    {
                        if (!frame.KeyStarted) throw Fail(text, i, "'{' where a key was expected");
                        frame.StartValue(text, i);
                    }
                    frame.Content(text, i);
                    frames.Push(new Frame('{', i) { FieldStart = i + 1 });
                    break;
                case '[':
                    if (frames.Count > MaxNesting) throw Fail(text, i, $"nested more than {MaxNesting} levels deep");
                    if (frame.IsObject && !frame.InValue)
                    {
                        throw Fail(text, i, frame.KeyStarted
                            ? $"the list after the key {text[frame.FieldStart..i].Trim()} needs '=' or ':' before it"
                            : "'[' where a key was expected");
                    }
                    frame.Content(text, i);
                    frames.Push(new Frame('[', i));
                    break;
                case '}' or ']':
                    if (frames.Count == 1) throw Fail(text, i, $"'{c}' closes nothing");
                    char expected = frame.IsObject ? '}' : ']';
                    if (c != expected)
                        throw Fail(text, i, $"'{c}' where '{expected}' was expected to close the '{frame.Kind}' at {Position(text, frame.Open)}");
                    if (frame.MissingValue(text, i) is { } noValue) throw new Problem(noValue);
                    frames.Pop();
                    if (frame.IsRootBraces)
                    {
                        output[i] = ' ';
                        int after = NextSignificant(text, i + 1);
                        if (after >= 0) throw Fail(text, after, $"text after the '}}' at {Position(text, i)} that closes the whole spec");
                    }
                    break;
                case ',':
                    if (!frame.HasElement) throw Fail(text, i, frame.IsObject ? "',' with no field before it" : "',' with no value before it");
                    if (frame.MissingValue(text, i) is { } missing) throw new Problem(missing);
                    frame.HasElement = false;
                    output[i] = '\n';
                    if (frame.IsObject) frame.NewField(i + 1);
                    break;
                case '=' or ':' when !frame.IsObject:
                    throw Fail(text, i, $"unexpected '{c}' inside the list opened at {Position(text, frame.Open)}");
                case '=' or ':':
                    if (frame.InValue)
                        throw Fail(text, i, $"unexpected '{c}' in the value of {frame.Key} (fields on one line need a ',' between them; quote text that holds '{c}')");
                    if (!frame.KeyStarted) throw Fail(text, i, $"'{c}' with no key before it");
                    if (c == '=' && text[i - 1] == '+') throw Fail(text, i - 1, "'+=' is not supported in sweep specs: give the whole list with '='");
                    frame.StartValue(text, i);
                    break;
                case char space when char.IsWhiteSpace(space):
                    break;
                default:
                    if (!frame.IsObject && NotInList.Contains(c))
                        throw Fail(text, i, $"unexpected '{c}' inside the list opened at {Position(text, frame.Open)}");
                    if (frame.IsObject && !frame.KeyStarted && IsIncludeStatement(text, i))
                    {
                        i = ReadInclude(text, i, output);
                        frame.StartValue(text, i + 1);
                        frame.Content(text, i);
                        break;
                    }
                    frame.Content(text, i);
                    break;
            }
        }

        var open = frames.Peek();
        if (frames.Count > 1) throw Fail(text, open.Open, $"'{open.Kind}' is never closed");
        if (open.MissingValue(text, text.Length) is { } last) throw new Problem(last);
        return new string(output);
    }

    /// <summary>The word <c>include</c> at the start of a field, followed by whitespace: an include statement (HOCON's rule).</summary>
    private static bool IsIncludeStatement(string text, int at) =>
        string.CompareOrdinal(text, at, Include, 0, Include.Length) == 0
        && at + Include.Length < text.Length && char.IsWhiteSpace(text[at + Include.Length]);

    /// <summary>
    /// Reads <c>include "f"</c>, <c>include file("f")</c>, <c>include required("f")</c> or
    /// <c>include required(file("f"))</c> and blanks out the wrappers in <paramref name="output"/>;
    /// returns the index of the statement's last character.
    /// </summary>
    private static int ReadInclude(string text, int at, char[] output)
    {
        const string usage = "include needs one quoted file name: include \"other.conf\" (or required(\"other.conf\"), file(\"other.conf\"))";
        int i = NextSignificant(text, at + Include.Length);
        if (i < 0) throw Fail(text, at, usage);
        var wrappers = new List<string>();
        while (text[i] != '"')
        {
            string? word = new[] { "required(", "file(", "url(", "classpath(" }.FirstOrDefault(w => string.CompareOrdinal(text, i, w, 0, w.Length) == 0);
            if (word is null || wrappers.Contains(word)) throw Fail(text, i, usage);
            if (word is "url(" or "classpath(") throw Fail(text, i, $"include {word}...) is not supported in sweep specs: include a file by its path, include \"other.conf\"");
            for (int j = i; j < i + word.Length; j++) output[j] = ' ';
            wrappers.Add(word);
            i = SkipSpaces(text, i + word.Length);
            if (i >= text.Length) throw Fail(text, at, usage);
        }
        if (text[i..].StartsWith("\"\"\"", StringComparison.Ordinal)) throw Fail(text, i, usage);
        int end = EndOfQuoted(text, i) ?? throw Fail(text, i, "unterminated string");
        foreach (var _ in wrappers)
        {
            end = SkipSpaces(text, end + 1);
            if (end >= text.Length || text[end] != ')') throw Fail(text, Math.Min(end, text.Length - 1), usage);
            output[end] = ' ';
        }
        return end;
    }

    private static int SkipSpaces(string text, int from)
    {
        while (from < text.Length && text[from] is ' ' or '\t') from++;
        return from;
    }

    /// <summary>The index of the next character that is not whitespace or part of a comment, or -1.</summary>
    private static int NextSignificant(string text, int from)
    {
        for (int i = from; i < text.Length; i++)
        {
            if (char.IsWhiteSpace(text[i])) continue;
            if (text[i] == '#' || (text[i] == '/' && i + 1 < text.Length && text[i + 1] == '/'))
            {
                i = EndOfLine(text, i);
                continue;
            }
            return i;
        }
        return -1;
    }

    private static int EndOfLine(string text, int from)
    {
        int end = text.IndexOf('\n', from);
        return end < 0 ? text.Length : end;
    }

    /// <summary>The index of the closing quote, or null when the string runs to the end of its line.</summary>
    private static int? EndOfQuoted(string text, int start)
    {
        for (int j = start + 1; j < text.Length; j++)
        {
            switch (text[j])
            {
                case '\\': j++; break;
                case '"': return j;
                case '\n': return null;
            }
        }
        return null;
    }

    private static Problem Fail(string text, int index, string problem) => new($"{Position(text, index)}: {problem}");

    /// <summary>"line L, column C" of an index (1-based).</summary>
    public static string Position(string text, int index)
    {
        index = Math.Clamp(index, 0, text.Length);
        int line = 1, lineStart = 0;
        for (int i = 0; i < index; i++)
        {
            if (text[i] != '\n') continue;
            line++;
            lineStart = i + 1;
        }
        return $"line {line}, column {index - lineStart + 1}";
    }
}
