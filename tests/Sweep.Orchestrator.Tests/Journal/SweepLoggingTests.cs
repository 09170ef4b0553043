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

    /// <summary>The templates Akka 1.5 logs at a node's loss (taken from a fail-over's JSON log), and lines that must stay.</summary>
    [Theory]
    [InlineData("Tried to associate with unreachable remote address [{0}]. Address is now gated for {1} ms, all messages to this address will be delivered to dead letters. Reason: [{2}] {3}", true)]
    [InlineData("Association with remote system {0} has failed; address is now gated for {1} ms. Reason is: [{2}]", true)]
    [InlineData("AssociationError [akka.tcp://sweep@127.0.0.1:37111] -> akka.tcp://sweep@127.0.0.1:25993: Error [Connection refused tcp://sweep@127.0.0.1:25993] []", true)]
    [InlineData("Association to [akka.tcp://sweep@127.0.0.1:25993] having UID [1404482602] is irrecoverably failed. UID is now quarantined and all messages to this UID will be delivered to dead letters. Remote actorsystem must be restarted to recover from this situation.", true)]
    [InlineData("Disassociated", true)]
    [InlineData("Cluster Node [{0}] - Marking node(s) as UNREACHABLE [{1}]. Node roles [{2}]", true)]
    [InlineData("SBR took decision Akka.Cluster.SBR.DownUnreachable and is downing [akka.tcp://sweep@127.0.0.1:25993], [1] unreachable of [4] members", true)]
    [InlineData("SBR took decision Akka.Cluster.SBR.DownAll and is downing [akka.tcp://sweep@127.0.0.1:4] including myself, [1] unreachable of [3] members", false)]
    [InlineData("SBR took decision Akka.Cluster.SBR.DownReachable and is downing [akka.tcp://sweep@127.0.0.1:4] including myself", false)]
    [InlineData("Couldn't join seed nodes after [{0}] attempts, will try again. seed-nodes=[{1}]", true)] // the join timeout's one line replaces them
    [InlineData("Transient association error (association remains live)", false)] // an oversized message: a real problem
    [InlineData("cluster: node 127.0.0.1:25993 (coordinator) is unreachable; it is downed if it stays so for 4 s", false)]
    [InlineData("worker {0}: the coordinator is gone; registering with its successor{1}", false)]
    public void A_lost_nodes_akka_transport_lines_leave_the_console_to_the_cluster_news(string template, bool replaced) =>
        Assert.Equal(replaced, ConsoleLines.IsReplacedAkkaLine(template));

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
