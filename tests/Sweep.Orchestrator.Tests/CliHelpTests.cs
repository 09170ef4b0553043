using System.Text.RegularExpressions;
using Sweep.Orchestrator.Cli;

namespace Sweep.Orchestrator.Tests;

/// <summary>`sweep COMMAND --help` for every command the program has.</summary>
public sealed partial class CliHelpTests
{
    private static async Task<string> Help(params string[] command)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await SweepCommandLine.RunAsync([.. command, "--help"], output, error);
        Assert.True(exit == 0, $"sweep {string.Join(' ', command)} --help exited {exit}: {error}");
        return output.ToString();
    }

    /// <summary>The commands the root help lists (so that a new command is checked without touching this test).</summary>
    private static async Task<IReadOnlyList<string>> Commands()
    {
        var help = await Help();
        var section = help[help.IndexOf("Commands:", StringComparison.Ordinal)..];
        return CommandLine().Matches(section).Select(m => m.Groups["name"].Value).ToList();
    }

    /// <summary>Each option's entry: its first line and the lines its description wraps onto.</summary>
    private static IEnumerable<string> OptionEntries(string help)
    {
        var options = help[help.IndexOf("Options:", StringComparison.Ordinal)..].Split('\n').Skip(1);
        string? entry = null;
        foreach (var line in options.Select(l => l.TrimEnd('\r')))
        {
            if (OptionStart().IsMatch(line))
            {
                if (entry is not null) yield return entry;
                entry = line.Trim();
            }
            else if (line.Trim().Length > 0 && entry is not null)
            {
                entry += " " + line.Trim();
            }
            else if (line.Trim().Length == 0)
            {
                break;
            }
        }
        if (entry is not null) yield return entry;
    }

    [Fact]
    public async Task No_option_of_any_command_shows_its_default_twice()
    {
        var commands = await Commands();
        Assert.Contains("train", commands);
        Assert.Contains("dashboard", commands);
        Assert.True(commands.Count >= 10, string.Join(", ", commands));

        var doubled = new List<string>();
        int defaults = 0;
        foreach (var command in commands)
        {
            foreach (var entry in OptionEntries(await Help(command)))
            {
                int count = Regex.Matches(entry, @"\[default:").Count;
                defaults += count;
                if (count > 1) doubled.Add($"sweep {command}: {entry}");
            }
        }

        Assert.True(doubled.Count == 0, "defaults shown twice:\n" + string.Join('\n', doubled));
        Assert.True(defaults > 20, $"only {defaults} defaults found: the help was not read");
    }

    [Fact]
    public async Task Train_shows_the_defaults_of_threads_and_dataset_in_words_once()
    {
        var entries = OptionEntries(await Help("train")).ToList();

        Assert.Equal("--threads <threads> LibTorch threads [default: all cores].", Regex.Replace(entries.Single(e => e.StartsWith("--threads", StringComparison.Ordinal)), @"\s+", " "));
        Assert.Equal("--dataset <dataset> Folder with the four MNIST IDX files [default: the embedded 8,000/2,000 subset].", Regex.Replace(entries.Single(e => e.StartsWith("--dataset", StringComparison.Ordinal)), @"\s+", " "));
    }

    [GeneratedRegex(@"^[ ]{2}(?<name>[a-z]+)\b", RegexOptions.Multiline)]
    private static partial Regex CommandLine();

    [GeneratedRegex(@"^[ ]{2}-")]
    private static partial Regex OptionStart();
}
