using Sweep.Orchestrator.Specs;

namespace Sweep.Orchestrator.Tests.Journal;

/// <summary>
/// A journal written by the build before trials had named parameters (Fixtures/before-parameters:
/// the synthetic-faults preset run to its end, the paper's and the scaling preset interrupted, with
/// that build's status and report output beside it): the sweeps it holds still read, and read the same.
/// </summary>
public sealed class JournalCompatibilityTests
{
    private static readonly string Fixture = Path.Combine(RepositoryFiles.Root, "tests", "Sweep.Orchestrator.Tests", "Fixtures", "before-parameters");

    public static TheoryData<string, string> Sweeps => new()
    {
        { "synthetic-faults-before", "synthetic-faults.conf" },
        { "paper-lenet-before", "paper-lenet.conf" },
        { "scaling-rules-before", "scaling-rules.conf" },
    };

    /// <summary>A copy of the fixture's journal, so that a reading command cannot change the checked-in file.</summary>
    private static string CopyOfJournal()
    {
        string dir = Directory.CreateTempSubdirectory("sweep-compat-").FullName;
        File.Copy(Path.Combine(Fixture, "journal.db"), Path.Combine(dir, "journal.db"));
        return dir;
    }

    [Theory]
    [MemberData(nameof(Sweeps))]
    public void Status_of_an_old_sweep_is_what_the_old_build_printed(string sweepId, string preset)
    {
        _ = preset;
        string dir = CopyOfJournal();
        var text = SweepProcess.Run("status", sweepId, "--data-dir", dir);
        var json = SweepProcess.Run("status", sweepId, "--data-dir", dir, "--json");
        Assert.Equal(0, text.ExitCode);
        Assert.Equal(0, json.ExitCode);
        Assert.Equal(File.ReadAllText(Path.Combine(Fixture, sweepId, "status.txt")), text.Stdout);
        Assert.Equal(File.ReadAllText(Path.Combine(Fixture, sweepId, "status.json")), json.Stdout);
    }

    [Theory]
    [MemberData(nameof(Sweeps))]
    public void Report_of_an_old_sweep_is_what_the_old_build_wrote(string sweepId, string preset)
    {
        _ = preset;
        string dir = CopyOfJournal();
        string output = Path.Combine(dir, "report");
        var run = SweepProcess.Run("report", sweepId, "--data-dir", dir, "--out", output);
        Assert.True(run.ExitCode == 0, run.Stderr);
        foreach (var file in new[] { "trials.csv", "metrics.csv" })
            Assert.Equal(File.ReadAllText(Path.Combine(Fixture, sweepId, file)), File.ReadAllText(Path.Combine(output, file)));
        // report.md: everything the old build wrote, as it wrote it; the figures added since (compare-*.png)
        // are extra blocks, the best trial's parameters and lead an extra finding.
        Assert.Equal(File.ReadAllText(Path.Combine(Fixture, sweepId, "report.md")), WithoutAdditions(File.ReadAllText(Path.Combine(output, "report.md"))));
    }

    /// <summary>
    /// report.md without what was added since the fixture: the blocks of the comparison figures (a
    /// heading, its description, its image, each followed by a blank line) and the "best trial" finding;
    /// and the sentences reworded since, back in their old words (the CPU memory figure's resolution,
    /// measured again on 2026-12-01: 50 MB, not 20; in the report's memory note and claim 8's rule).
    /// </summary>
    private static string WithoutAdditions(string report) =>
        System.Text.RegularExpressions.Regex.Replace(
            System.Text.RegularExpressions.Regex.Replace(report.Replace(
                "and what the allocators keep from earlier trials of that process, up to about 50 MB: a figure can read high, never low, so the findings compare each batch size's smallest reading)",
                "and up to about 20 MB left by earlier trials of that process)").Replace(
                "and what the allocators keep from earlier trials of that process, up to about 50 MB: a figure can read high, never low)",
                "and up to about 20 MB left by earlier trials of that process)"), @"### \[[^\]]*\]\(compare-[^)]*\.png\)\r?\n\r?\n[^\n]*\n\r?\n!\[[^\]]*\]\(compare-[^)]*\.png\)\r?\n\r?\n", ""),
            @"(?m)^- best trial [^\n]*\n", "");

    /// <summary>The presets still expand to the trials (ids, names) the old build journaled: a resumed old sweep finds its trials.</summary>
    [Theory]
    [MemberData(nameof(Sweeps))]
    public void Presets_expand_to_the_trial_ids_the_old_build_journaled(string sweepId, string preset)
    {
        var journaled = File.ReadLines(Path.Combine(Fixture, sweepId, "trials.csv")).Skip(1)
            .Select(line => line.Split(',')).Select(f => (Id: f[0].Trim('"'), Name: f[1].Trim('"'))).ToList();
        var now = SweepSpecLoader.Load(Path.Combine(RepositoryFiles.Root, "hocon", "sweeps", preset), [], TextWriter.Null).Trials;
        Assert.NotEmpty(journaled);
        // halve-batch re-queues keep their id and name; every journaled trial is one of the preset's, and the other way round.
        Assert.Equal(now.Select(t => (t.Id, t.Name)).OrderBy(t => t.Id), journaled.OrderBy(t => t.Id));
    }
}
