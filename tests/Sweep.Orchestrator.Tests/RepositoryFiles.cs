namespace Sweep.Orchestrator.Tests;

/// <summary>The repository the tests were built from: its files are the source of truth, not copies in the build output.</summary>
public static class RepositoryFiles
{
    /// <summary>The folder holding Sweep.Actors.sln, above the test output.</summary>
    /// <exception cref="InvalidOperationException">The test output is not inside a checkout of the repository.</exception>
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Sweep.Actors.sln"))) return dir.FullName;
            }
            throw new InvalidOperationException("the repository root (Sweep.Actors.sln) is not above the test output");
        }
    }
}
