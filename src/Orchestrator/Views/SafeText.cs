using System.Globalization;
using System.Text;

namespace Sweep.Orchestrator.Views;

/// <summary>
/// Text that comes from outside (trial and sweep names from specs, divergence reasons, errors, slot
/// verdicts) made safe for each kind of output, one helper per kind: <see cref="Line"/> for terminal
/// text (status tables, progress lines), <see cref="Markdown"/> for report.md, <see cref="CsvText"/>
/// for a CSV field. Numbers and fixed words of our own need none of this.
/// </summary>
public static class SafeText
{
    /// <summary>
    /// Terminal and table text: one line whatever the input. Control characters (line breaks, tabs,
    /// escape sequences that would move the cursor or recolour the terminal, C1 codes), the Unicode
    /// line and paragraph separators and the bidirectional overrides are shown as escapes
    /// (<c>\n</c>, <c>\r</c>, <c>\t</c>, else <c>\uXXXX</c>), so a row stays one row and reads the
    /// same on every terminal. Everything else is kept as it is.
    /// </summary>
    public static string Line(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        int first = IndexOfUnsafe(text);
        if (first < 0) return text;
        var line = new StringBuilder(text.Length + 8).Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            char c = text[i];
            if (!IsUnsafe(c)) line.Append(c);
            else line.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => "\\u" + ((int)c).ToString("X4", CultureInfo.InvariantCulture),
            });
        }
        return line.ToString();
    }

    /// <summary>
    /// Markdown text (report.md, in a sentence, a list item or a table cell): first made one
    /// <see cref="Line"/>, then every character markdown would read as syntax is backslash-escaped
    /// (CommonMark: any ASCII punctuation may be), so that it renders as the text it is: HTML
    /// (<c>&lt;</c>, <c>&gt;</c>, <c>&amp;</c>), table cells (<c>|</c>), emphasis, code, links,
    /// strikethrough and math (<c>* _ ` [ ] ~ $</c>), the backslash itself, and at the start (where a
    /// list item's text begins) what would open a heading, a list or a rule (<c>#</c>, <c>-</c>,
    /// <c>+</c>, <c>1.</c>, <c>1)</c>).
    /// </summary>
    public static string Markdown(string? text)
    {
        var line = Line(text);
        var md = new StringBuilder(line.Length + 8);
        int digits = 0;
        while (digits < line.Length && char.IsAsciiDigit(line[digits])) digits++;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            bool opensBlock = (i == 0 && c is '#' or '-' or '+') || (i == digits && i > 0 && c is '.' or ')');
            if (opensBlock || MarkdownSyntax.Contains(c)) md.Append('\\');
            md.Append(c);
        }
        return md.ToString();
    }

    /// <summary>
    /// A CSV text field as OWASP advises against CSV (formula) injection: a value a spreadsheet would
    /// run as a formula (starting with <c>=</c>, <c>+</c>, <c>-</c>, <c>@</c>, a tab, a carriage
    /// return, a line feed, or their full-width forms) gets a single quote in front, and the field is
    /// always enclosed in double quotes with its double quotes doubled (RFC 4180). Line breaks stay
    /// inside the quotes: the value reads back exactly, but for that quote.
    /// </summary>
    public static string CsvText(string? text)
    {
        var value = text ?? "";
        if (value.Length > 0 && FormulaStarts.Contains(value[0])) value = "'" + value;
        return "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>What a spreadsheet reads as the start of a formula (OWASP's list, the line feed and the full-width forms).</summary>
    private const string FormulaStarts = "=+-@\t\r\n\uFF1D\uFF0B\uFF0D\uFF20";

    private const string MarkdownSyntax = "\\`*_[]<>&|~$";

    private static int IndexOfUnsafe(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (IsUnsafe(text[i])) return i;
        }
        return -1;
    }

    /// <summary>Control characters, the line and paragraph separators, and the bidirectional marks, embeddings, overrides and isolates.</summary>
    private static bool IsUnsafe(char c) =>
        char.IsControl(c) || c is '\u2028' or '\u2029' or '\u061C' or '\u200E' or '\u200F' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069');
}
