using Sweep.Orchestrator.Reporting;
using Sweep.Orchestrator.Tests.Reporting;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests.Views;

/// <summary>The one escaping helper per kind of output: terminal text, markdown, CSV; exact outputs for hostile names.</summary>
public sealed class SafeTextTests
{
    /// <summary>Names a spec could give: line breaks, tabs, table pipes, HTML, spreadsheet formulas.</summary>
    public static readonly string[] HostileNames = ["new\nline", "tab\there", "pipe|name", "<script>alert(1)</script>", "=1+1", "@x", "-2", "+3"];

    [Theory]
    [InlineData("b64-lr0.01", "b64-lr0.01")]
    [InlineData("new\nline", "new\\nline")]
    [InlineData("tab\there", "tab\\there")]
    [InlineData("cr\r\nlf", "cr\\r\\nlf")]
    [InlineData("esc\u001b[2Jclear", "esc\\u001B[2Jclear")]
    [InlineData("c1\u0085next", "c1\\u0085next")]
    [InlineData("sep\u2028para\u2029", "sep\\u2028para\\u2029")]
    [InlineData("bidi\u202Eevil", "bidi\\u202Eevil")]
    [InlineData("pipe|name", "pipe|name")]
    [InlineData("<script>alert(1)</script>", "<script>alert(1)</script>")]
    [InlineData("=1+1", "=1+1")]
    [InlineData("", "")]
    public void Terminal_text_is_one_line_with_control_characters_shown_as_escapes(string name, string expected)
    {
        Assert.Equal(expected, SafeText.Line(name));
        Assert.DoesNotContain(SafeText.Line(name), c => char.IsControl(c));
    }

    [Theory]
    [InlineData("b64-lr0.01", "b64-lr0.01")]
    [InlineData("<script>alert(1)</script>", "\\<script\\>alert(1)\\</script\\>")]
    [InlineData("pipe|name", "pipe\\|name")]
    [InlineData("new\nline", "new\\\\nline")]
    [InlineData("tab\there", "tab\\\\there")]
    [InlineData("**bold** _it_ `code` [link](http://x) ~del~ $x$", "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\[link\\](http://x) \\~del\\~ \\$x\\$")]
    [InlineData("a &amp; b", "a \\&amp; b")]
    [InlineData("back\\slash", "back\\\\slash")]
    [InlineData("=1+1", "=1+1")]
    [InlineData("@x", "@x")]
    [InlineData("-2", "\\-2")]
    [InlineData("+3", "\\+3")]
    [InlineData("# heading", "\\# heading")]
    [InlineData("- item", "\\- item")]
    [InlineData("1. first", "1\\. first")]
    [InlineData("2024) year", "2024\\) year")]
    [InlineData("b1.5-x+y#z", "b1.5-x+y#z")]
    public void Markdown_text_escapes_html_and_table_and_inline_syntax(string name, string expected) =>
        Assert.Equal(expected, SafeText.Markdown(name));

    [Theory]
    [InlineData("b64-lr0.01", "\"b64-lr0.01\"")]
    [InlineData("=1+1", "\"'=1+1\"")]
    [InlineData("@x", "\"'@x\"")]
    [InlineData("-2", "\"'-2\"")]
    [InlineData("+3", "\"'+3\"")]
    [InlineData("\tx", "\"'\tx\"")]
    [InlineData("\rx", "\"'\rx\"")]
    [InlineData("\uFF1D1+1", "\"'\uFF1D1+1\"")]
    [InlineData("a=1", "\"a=1\"")]
    [InlineData("say \"hi\", then", "\"say \"\"hi\"\", then\"")]
    [InlineData("new\nline", "\"new\nline\"")]
    [InlineData("", "\"\"")]
    public void Csv_text_is_quoted_and_formulas_are_neutralised_with_a_single_quote(string name, string expected) =>
        Assert.Equal(expected, SafeText.CsvText(name));

    [Fact]
    public void Every_hostile_name_reads_back_from_csv_as_itself_but_for_the_formula_quote()
    {
        var row = string.Join(',', HostileNames.Select(SafeText.CsvText)) + "\r\n";
        var parsed = Assert.Single(ReportFiles.ParseCsv(row));
        Assert.Equal(["new\nline", "tab\there", "pipe|name", "<script>alert(1)</script>", "'=1+1", "'@x", "'-2", "'+3"], parsed);
    }

    /// <summary>The cells of a GFM table row: split on the pipes that are not backslash-escaped.</summary>
    public static List<string> MarkdownCells(string row)
    {
        Assert.StartsWith("| ", row);
        Assert.EndsWith(" |", row);
        var cells = new List<string>();
        var cell = new System.Text.StringBuilder();
        for (int i = 1; i < row.Length - 1; i++)
        {
            if (row[i] == '\\' && i + 1 < row.Length - 1)
            {
                cell.Append(row[i]).Append(row[i + 1]);
                i++;
            }
            else if (row[i] == '|')
            {
                cells.Add(cell.ToString().Trim());
                cell.Clear();
            }
            else cell.Append(row[i]);
        }
        cells.Add(cell.ToString().Trim());
        return cells;
    }

    [Fact]
    public void A_markdown_table_row_of_hostile_names_keeps_one_cell_per_name()
    {
        var row = "| " + string.Join(" | ", HostileNames.Select(SafeText.Markdown)) + " |";
        Assert.DoesNotContain('\n', row);
        Assert.Equal(HostileNames.Select(SafeText.Markdown), MarkdownCells(row));
    }
}
