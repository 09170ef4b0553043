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

    [Fact]
    public void The_console_leaves_out_stack_frames_akka_writes_into_its_messages()
    {
        // As Akka.Remote logs a lost association during a fail-over (the exception's ToString in the text).
        var text = "[WRN] Association with remote system akka.tcp://sweep@127.0.0.1:47001 has failed; address is now gated for 5000 ms. Reason is: [Akka.Remote.EndpointDisassociatedException: Disassociated\n"
                   + "   at Akka.Remote.EndpointWriter.PublishAndThrow(Exception reason, LogLevel level, Boolean needToThrow)\n"
                   + "   --- End of stack trace from previous location ---\n"
                   + "   at Akka.Actor.ActorCell.Invoke(Envelope envelope)]\n";

        Assert.Equal("[WRN] Association with remote system akka.tcp://sweep@127.0.0.1:47001 has failed; address is now gated for 5000 ms. Reason is: [Akka.Remote.EndpointDisassociatedException: Disassociated]\n",
            ConsoleLines.WithoutStackTraces(text));
        Assert.Equal("[WRN] two lines\n  indented, not a frame\n", ConsoleLines.WithoutStackTraces("[WRN] two lines\n  indented, not a frame\n"));
    }

    [Fact]
    public void The_console_format_shows_an_exception_in_one_line()
    {
        Exception thrown;
        try { throw new InvalidOperationException("outer", new IOException("disk gone\nsecond line")); }
        catch (Exception e) { thrown = e; }
        var logEvent = new Serilog.Events.LogEvent(DateTimeOffset.Now, Serilog.Events.LogEventLevel.Error, thrown,
            new Serilog.Parsing.MessageTemplateParser().Parse("journal write failed"), []);
        new ExceptionInOneLine().Enrich(logEvent, new PropertyFactory());
        var output = new StringWriter();

        ConsoleLines.Formatter.Format(logEvent, output);

        Assert.Equal("[ERR] journal write failed (IOException: disk gone)" + Environment.NewLine, output.ToString());
    }

    private sealed class PropertyFactory : Serilog.Core.ILogEventPropertyFactory
    {
        public Serilog.Events.LogEventProperty CreateProperty(string name, object? value, bool destructureObjects = false) =>
            new(name, new Serilog.Events.ScalarValue(value));
    }
}
