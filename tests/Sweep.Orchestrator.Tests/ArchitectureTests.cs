using System.Text.RegularExpressions;

namespace Sweep.Orchestrator.Tests;

/// <summary>
/// The arrows between src/Orchestrator's folders point one way: commands (Cli) over the run, the
/// features (cluster, dashboard, report, views), the journal reader, the coordinator, and the
/// hosting and spec code at the bottom. A folder uses only the layers below its own.
/// </summary>
public sealed partial class ArchitectureTests
{
    /// <summary>Bottom to top; the README's layout table says what each holds.</summary>
    private static readonly string[][] Layers =
    [
        ["Hosting", "Specs"],
        ["Coordination"],
        ["Journal"],
        ["Views"],
        ["Cluster", "Dashboard", "Reporting"],
        ["Running"],
        ["Cli"],
    ];

    private static string Orchestrator => Path.Combine(RepositoryFiles.Root, "src", "Orchestrator");

    [GeneratedRegex(@"\b(?:class|record|struct|interface|enum)\s+(\w+)")]
    private static partial Regex Declaration();

    [GeneratedRegex(@"Sweep\.Orchestrator\.(\w+)")]
    private static partial Regex Namespace();

    [GeneratedRegex(@"(?<![\w.])(\w+)\.(\w+)")]
    private static partial Regex Qualified();

    [Fact]
    public void Every_folder_has_a_layer()
    {
        var folders = Folders().Order();

        Assert.Equal(folders, Layers.SelectMany(layer => layer).Order());
    }

    [Fact]
    public void A_folder_uses_only_the_layers_below_its_own()
    {
        var layerOf = Layers.SelectMany((layer, i) => layer.Select(folder => (folder, i))).ToDictionary(x => x.folder, x => x.i);
        var declared = Folders().ToDictionary(folder => folder, folder => Sources(folder).SelectMany(file => Declaration().Matches(File.ReadAllText(file)).Select(m => m.Groups[1].Value)).ToHashSet());

        var upward = new List<string>();
        foreach (var folder in Folders())
        {
            foreach (var file in Sources(folder))
            {
                foreach (var (line, number) in File.ReadLines(file).Select((line, i) => (line, i + 1)))
                {
                    // Code only: a comment may name anything.
                    var code = line.Split("//")[0];
                    var used = Namespace().Matches(code).Select(m => m.Groups[1].Value)
                        .Concat(Qualified().Matches(code).Where(m => declared.TryGetValue(m.Groups[1].Value, out var types) && types.Contains(m.Groups[2].Value)).Select(m => m.Groups[1].Value));
                    foreach (var other in used.Distinct().Where(other => other != folder && layerOf.ContainsKey(other) && layerOf[other] >= layerOf[folder]))
                        upward.Add($"{Path.GetRelativePath(Orchestrator, file)}:{number} uses {other} (layer {layerOf[other]}) from {folder} (layer {layerOf[folder]})");
                }
            }
        }

        Assert.Empty(upward);
    }

    [Fact]
    public void The_check_sees_a_use_through_a_using_and_through_a_qualified_name()
    {
        // The two ways C# code in one folder reaches a type of another, as the check reads them.
        Assert.Equal("Running", Namespace().Match("using Sweep.Orchestrator.Running;").Groups[1].Value);
        var qualified = Qualified().Match("var x = Dashboard.DashboardServer.Build(journal);");
        Assert.Equal(("Dashboard", "DashboardServer"), (qualified.Groups[1].Value, qualified.Groups[2].Value));
        // Akka's own Cluster namespace is not this project's folder.
        Assert.DoesNotContain(Qualified().Matches("Akka.Cluster.Cluster.Get(system)"), m => m.Groups[1].Value == "Cluster" && m.Index == 5);
    }

    private static IEnumerable<string> Folders() =>
        Directory.GetDirectories(Orchestrator).Select(Path.GetFileName).OfType<string>().Where(name => name is not ("bin" or "obj"));

    private static IEnumerable<string> Sources(string folder) => Directory.EnumerateFiles(Path.Combine(Orchestrator, folder), "*.cs", SearchOption.AllDirectories);
}
