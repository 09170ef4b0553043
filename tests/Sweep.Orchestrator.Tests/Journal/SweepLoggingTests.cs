using Sweep.Orchestrator.Hosting;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Tests.Journal;

/// <summary>Akka's logs never reach stdout, which carries progress and `status --json`.</summary>
public sealed class SweepLoggingTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-logging-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(temp, recursive: true);
    }

    [Fact]
    public async Task Akkas_minimal_logger_is_serilog_so_a_stopping_logger_drains_away_from_stdout()
    {
        // A logger stopped with events in its mailbox hands them to the minimal logger whatever
        // akka.stdout-loglevel says (Akka's LoggerMailbox.CleanUp): seen in CI as an INFO line after `status --json`'s "[]".
        await using var system = await SweepSystem.StartAsync(new JournalSettings(temp));
        Assert.IsType<SerilogMinimalLogger>(system.System.Settings.StdoutLogger);
        Assert.Equal("OFF", system.System.Settings.StdoutLogLevel, ignoreCase: true);
    }
}
