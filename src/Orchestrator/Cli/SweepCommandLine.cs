using System.CommandLine;
using System.Runtime.InteropServices;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Cli;

/// <summary>
/// The `sweep` program: its commands, and the one place where outcomes become exit codes.
/// Bad input is one line on stderr and exit code 2, never a stack trace.
/// </summary>
public static class SweepCommandLine
{
    public const int ExitOk = 0;
    public const int ExitFailed = 1;
    public const int ExitBadInput = 2;
    public const int ExitInterrupted = 130;

    /// <summary>Ended by SIGTERM: 128 + 15, the shell's convention (Ctrl+C, SIGINT, is 130 = 128 + 2).</summary>
    public const int ExitTerminated = 143;

    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        // Every command is set up with types of the worker's assembly: without it, one line rather than the runtime's stack trace.
        if (Hosting.WorkerProgram.MissingAssembly() is { } missing)
        {
            error.WriteLine($"sweep: {missing}");
            return ExitFailed;
        }
        var root = new RootCommand("Sweep.Actors: hyperparameter sweeps of real training trials, on one machine or a cluster.")
        {
            SweepCommands.Run(output),
            SweepCommands.Resume(output),
            SweepCommands.Status(output),
            SweepCommands.Watch(output),
            SweepCommands.Logs(output),
            ReportCommand.Create(output),
            DashboardCommand.Create(output),
            SweepCommands.Worker(output),
            TrainCommand.Create(output, error),
            SelfTestCommand.Create(output),
        };

        var logLevel = new Option<string?>("--log-level") { Description = "Log level of this process: verbose, debug, information, warning, error [default: hocon/akka.conf].", Recursive = true };
        root.Options.Add(logLevel);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            error.WriteLine($"sweep: {Readable(OneLine(parsed.Errors[0].Message))} (see 'sweep {CommandPath(parsed)}--help')");
            return ExitBadInput;
        }

        using var interrupt = new CancellationTokenSource();
        PosixSignal? terminatedBy = null;
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
        try
        {
            if (parsed.GetValue(logLevel) is { } level) Hosting.SweepLogging.LevelOverride = Hosting.SweepLogging.ParseLevel(level, "--log-level");
            var configuration = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false };
            int code = await parsed.InvokeAsync(configuration, interrupt.Token);
            return code == ExitInterrupted && terminatedBy == PosixSignal.SIGTERM ? ExitTerminated : code;
        }
        catch (InvalidInputException e)
        {
            error.WriteLine($"sweep: {OneLine(e.Message)}");
            return ExitBadInput;
        }
        catch (Exception e) when (e is Hosting.JournalUnavailableException or Hosting.SetupFaultException)
        {
            error.WriteLine($"sweep: {OneLine(e.Message)}");
            return ExitFailed;
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            // A file of ours could not be written (a report on a full disk): what and where, not a stack trace.
            var fault = Hosting.JournalFaults.Describe(e);
            error.WriteLine($"sweep: {OneLine(e.Message)}; {fault.Advice} and try again");
            return ExitFailed;
        }
        catch (OperationCanceledException) when (interrupt.IsCancellationRequested)
        {
            error.WriteLine("sweep: interrupted");
            return terminatedBy == PosixSignal.SIGTERM ? ExitTerminated : ExitInterrupted;
        }
        catch (Exception e)
        {
            error.WriteLine($"sweep: failed: {e.GetType().Name}: {OneLine(e.Message)}");
            return ExitFailed;
        }

        void Interrupt(PosixSignalContext context)
        {
            // The command stops within one iteration and reports what it has; a second signal ends the process as usual.
            if (interrupt.IsCancellationRequested) return;
            context.Cancel = true;
            terminatedBy = context.Signal;
            interrupt.Cancel();
        }
    }

    /// <summary>The parser's "Cannot parse argument 'abc' for option '--threads' as expected type 'System.Int32'" in a user's words.</summary>
    private static string Readable(string message)
    {
        var match = System.Text.RegularExpressions.Regex.Match(message, @"^Cannot parse argument '(.*?)' for option '(.*?)' as expected type '(.*?)'\.?\s*(.*)$");
        if (!match.Success) return message;
        var (value, option, type, rest) = (match.Groups[1].Value, match.Groups[2].Value, match.Groups[3].Value, match.Groups[4].Value);
        const string suggestions = "Did you mean one of the following?";
        string expected = rest.StartsWith(suggestions, StringComparison.Ordinal)
            ? "one of " + string.Join(", ", rest[suggestions.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => w.ToLowerInvariant()))
            : type.Contains("Int32", StringComparison.Ordinal) || type.Contains("Int64", StringComparison.Ordinal) ? "a whole number"
            : type.Contains("Double", StringComparison.Ordinal) || type.Contains("Single", StringComparison.Ordinal) ? "a number"
            : "a valid value";
        return $"{option}: '{value}' is not {expected}";
    }

    private static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static string CommandPath(ParseResult parsed)
    {
        var names = new List<string>();
        for (var result = parsed.CommandResult; result.Parent is System.CommandLine.Parsing.CommandResult parent; result = parent)
            names.Insert(0, result.Command.Name);
        return names.Count == 0 ? "" : string.Join(' ', names) + " ";
    }
}
