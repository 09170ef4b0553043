using System.Text;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Hosting;

/// <summary>
/// Serilog for the whole process, Akka's own logs included (Akka.Logger.Serilog): warnings and
/// errors on the console (stderr, so stdout stays for progress and JSON), and, for processes that
/// run trials, every event at the configured level as compact JSON in DATA-DIR/logs/NAME.json
/// (rolled daily and at 50 MB), one object per line, with the trial properties that
/// `sweep logs` filters on. The level comes from --log-level, else hocon/akka.conf (sweep.logging.level).
/// </summary>
public static class SweepLogging
{
    /// <summary>Set from --log-level for this process; null leaves it to hocon/akka.conf.</summary>
    public static LogEventLevel? LevelOverride { get; set; }

    public static string Directory(JournalSettings journal) => Path.Combine(journal.DataDirectory, "logs");

    /// <summary>Configures Serilog and returns the Akka settings that route Akka's logs into it at the same level.</summary>
    public static string Configure(JournalSettings journal, string? logName, Akka.Configuration.Config akkaConfig)
    {
        var level = LevelOverride ?? ParseLevel(akkaConfig.GetString("sweep.logging.level", "information"), "sweep.logging.level");
        var consoleLevel = ParseLevel(akkaConfig.GetString("sweep.logging.console-level", "warning"), "sweep.logging.console-level");
        var configuration = new LoggerConfiguration()
            .MinimumLevel.Is(level)
            .Enrich.FromLogContext()
            .Enrich.With<ExceptionInOneLine>()
            .WriteTo.Logger(console => console
                .Filter.ByExcluding(e => ConsoleLines.IsReplacedAkkaLine(e.MessageTemplate.Text))
                .WriteTo.Console(ConsoleLines.Formatter, restrictedToMinimumLevel: consoleLevel > level ? consoleLevel : level, standardErrorFromLevel: LogEventLevel.Verbose));
        if (logName is not null)
        {
            configuration.WriteTo.File(new CompactJsonFormatter(), Path.Combine(Directory(journal), logName + "-.json"),
                rollingInterval: RollingInterval.Day, fileSizeLimitBytes: 50_000_000, rollOnFileSizeLimit: true, shared: true,
                flushToDiskInterval: TimeSpan.FromSeconds(1));
        }
        Log.Logger = configuration.CreateLogger();
        return $$"""
            akka.loggers = ["Akka.Logger.Serilog.SerilogLogger, Akka.Logger.Serilog"]
            akka.logger-formatter = "Akka.Logger.Serilog.SerilogLogMessageFormatter, Akka.Logger.Serilog"
            akka.loglevel = {{AkkaLevel(level)}}
            akka.stdout-loglevel = OFF
            akka.stdout-logger-class = "{{typeof(SerilogMinimalLogger).AssemblyQualifiedName}}"
            """;
    }

    public static LogEventLevel ParseLevel(string text, string source) => text.Trim().ToLowerInvariant() switch
    {
        "verbose" or "trace" => LogEventLevel.Verbose,
        "debug" => LogEventLevel.Debug,
        "information" or "info" => LogEventLevel.Information,
        "warning" or "warn" => LogEventLevel.Warning,
        "error" => LogEventLevel.Error,
        _ => throw new InvalidInputException($"{source}: '{text}' is not a log level (verbose, debug, information, warning, error)"),
    };

    private static string AkkaLevel(LogEventLevel level) => level switch
    {
        <= LogEventLevel.Debug => "DEBUG",
        LogEventLevel.Information => "INFO",
        LogEventLevel.Warning => "WARNING",
        _ => "ERROR",
    };
}

/// <summary>
/// Akka's minimal logger, the one it writes to before its loggers start and after they stop (a
/// stopping logger's mailbox is drained into it whatever akka.stdout-loglevel says: Akka's
/// LoggerMailbox.CleanUp). Akka's own prints to stdout, which is for progress and JSON
/// (`sweep status --json`); this one hands the events to Serilog, which sends them where every other
/// log line goes.
/// </summary>
public sealed class SerilogMinimalLogger : Akka.Event.MinimalLogger
{
    /// <inheritdoc/>
    protected override void Log(object message)
    {
        if (message is not Akka.Event.LogEvent log) return;
        var level = log.LogLevel() switch
        {
            Akka.Event.LogLevel.DebugLevel => LogEventLevel.Debug,
            Akka.Event.LogLevel.InfoLevel => LogEventLevel.Information,
            Akka.Event.LogLevel.WarningLevel => LogEventLevel.Warning,
            _ => LogEventLevel.Error,
        };
        Serilog.Log.Write(level, log.Cause, "{LogSource}: {AkkaMessage}", log.LogSource, log.Message?.ToString());
    }
}

/// <summary>
/// The console shows a logged exception as one line, " (Type: message)" of its innermost cause; the
/// stack trace stays in the JSON log file, where `sweep logs` finds it.
/// </summary>
public sealed class ExceptionInOneLine : Serilog.Core.ILogEventEnricher
{
    /// <summary>The property the console template prints.</summary>
    public const string Property = "ExceptionLine";

    /// <inheritdoc/>
    public void Enrich(Serilog.Events.LogEvent logEvent, Serilog.Core.ILogEventPropertyFactory propertyFactory)
    {
        if (logEvent.Exception is null) return;
        var innermost = logEvent.Exception;
        while (innermost.InnerException is not null) innermost = innermost.InnerException;
        var message = innermost.Message.Split('\n')[0].Trim();
        logEvent.AddPropertyIfAbsent(propertyFactory.CreateProperty(Property, $" ({innermost.GetType().Name}: {message})"));
    }
}

/// <summary>
/// The console's format: "[WRN] message (Type: message)", with no stack trace. Akka writes some
/// exceptions into the text of its messages ("Association with remote system … has failed; … Reason
/// is: [Akka.Remote.EndpointDisassociatedException: Disassociated\n   at …]", during a fail-over):
/// their stack-frame lines are left out of the console, which keeps the exception's first line; the
/// JSON log file keeps everything.
/// </summary>
public sealed class ConsoleLines(Serilog.Formatting.ITextFormatter inner) : Serilog.Formatting.ITextFormatter
{
    /// <summary>The console format of every `sweep` process.</summary>
    public static ConsoleLines Formatter { get; } =
        new(new Serilog.Formatting.Display.MessageTemplateTextFormatter("[{Level:u3}] {Message:lj}{" + ExceptionInOneLine.Property + "}{NewLine}"));

    /// <summary>
    /// Akka's lines that Cluster.ClusterNews replaces on the console, by message template:
    /// the transport's reports of a connection to a node that died or was downed (association
    /// failed, gated, quarantined, disassociated) and the failure detector's and split-brain
    /// resolver's own reports; and a joining node's retries, which its one line replaces when the join
    /// times out (sweep.cluster.join-timeout). Every other Akka line (an oversized message, a serializer error)
    /// still reaches the console.
    /// </summary>
    public static bool IsReplacedAkkaLine(string messageTemplate) =>
        ReplacedTemplates.Any(prefix => messageTemplate.StartsWith(prefix, StringComparison.Ordinal));

    private static readonly string[] ReplacedTemplates =
    [
        "Tried to associate with unreachable remote address",
        "Association with remote system {0} has failed; address is now gated",
        "AssociationError [",
        "Association to [",
        "Disassociated",
        "Quarantined address [",
        "Cluster Node [{0}] - Marking node(s) as UNREACHABLE",
        "Cluster Node [{0}] - Marking node(s) as REACHABLE",
        "Cluster Node [{0}] - Marking node as TERMINATED",
        // The routine decision (downing unreachable nodes); one that downs this node's own side stays.
        "SBR took decision Akka.Cluster.SBR.DownUnreachable and is downing",
        // A joining node's retries: it joins within sweep.cluster.join-timeout, or says so in one line (SweepSystem).
        "Couldn't join seed nodes after [{0}] attempts",
    ];

    /// <inheritdoc/>
    public void Format(Serilog.Events.LogEvent logEvent, TextWriter output)
    {
        var rendered = new StringWriter();
        inner.Format(logEvent, rendered);
        output.Write(WithoutStackTraces(rendered.ToString()));
    }

    /// <summary>
    /// <paramref name="text"/> without its stack-frame lines ("   at …", "--- End of … ---"); a
    /// bracket that closed a frame line closes the line before it, so "[Type: message]" stays whole.
    /// </summary>
    public static string WithoutStackTraces(string text)
    {
        if (!text.Contains("\n", StringComparison.Ordinal)) return text;
        var kept = new StringBuilder(text.Length);
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            var trimmed = line.TrimStart();
            bool frame = i > 0 && trimmed.Length > 0 && trimmed.Length < line.Length
                         && (trimmed.StartsWith("at ", StringComparison.Ordinal) || trimmed.StartsWith("--- End of ", StringComparison.Ordinal));
            if (frame)
            {
                var closing = trimmed.Length - trimmed.TrimEnd(']').Length;
                kept.Append(']', closing);
                continue;
            }
            if (i > 0) kept.Append('\n');
            kept.Append(lines[i]);
        }
        return kept.ToString();
    }
}
