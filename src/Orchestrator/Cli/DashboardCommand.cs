using System.CommandLine;
using Sweep.Orchestrator.Dashboard;
using Sweep.Orchestrator.Hosting;
using Sweep.Protocol;

namespace Sweep.Orchestrator.Cli;

/// <summary>`sweep dashboard`: a live, read-only web view of a journal's sweeps, until Ctrl+C.</summary>
public static class DashboardCommand
{
    public static Command Create(TextWriter output)
    {
        var journalOptions = new SweepCommands.JournalOptions();
        var port = new Option<int>("--port") { Description = "The HTTP port to listen on (0: a free one).", DefaultValueFactory = _ => DashboardServer.DefaultPort };
        var bind = new Option<string>("--bind") { Description = "The address to listen on (an IP address, or localhost; 0.0.0.0 for every interface).", DefaultValueFactory = _ => DashboardServer.DefaultBind };
        var command = new Command("dashboard", "Serve a live, read-only web dashboard of the journal's sweeps (trial table, curves, logs, reports) until Ctrl+C.") { port, bind };
        journalOptions.AddTo(command);
        command.SetAction(async (parsed, cancellation) =>
        {
            int portNumber = parsed.GetValue(port);
            if (portNumber is < 0 or > 65535) throw new InvalidInputException($"--port {portNumber}: not a port");
            var address = parsed.GetValue(bind)!;
            var journal = journalOptions.ReadExisting(parsed);
            await using var app = DashboardServer.Build(journal, DashboardServer.UseKestrel(address, portNumber));
            await app.StartAsync(CancellationToken.None);
            foreach (var url in DashboardServer.Addresses(app)) output.WriteLine($"dashboard for {journal.Description} at {url}/ (Ctrl+C stops)");
            output.Flush();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellation);
            }
            catch (OperationCanceledException)
            {
            }
            await app.StopAsync(CancellationToken.None);
            return SweepCommandLine.ExitOk;
        });
        return command;
    }
}
