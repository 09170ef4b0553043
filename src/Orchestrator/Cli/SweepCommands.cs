using System.CommandLine;
using Akka.Actor;
using System.Text.RegularExpressions;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Orchestrator.Running;
using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Cli;

/// <summary>`sweep run`, `sweep resume` and `sweep status`: sweeps on this machine, kept in a journal under a data directory.</summary>
public static partial class SweepCommands
{
    /// <summary>--data-dir and --journal: where the journal and checkpoints are.</summary>
    internal sealed class JournalOptions
    {
        public Option<string> DataDir { get; } = new("--data-dir")
        {
            Description = "Where the journal (journal.db) and checkpoints live.",
            DefaultValueFactory = _ => JournalSettings.DefaultDataDirectory,
        };

        public Option<string?> Journal { get; } = new("--journal")
        {
            Description = "The journal instead of DATA-DIR/journal.db: a SQLite file, or a PostgreSQL connection string (Host=…;Database=…;Username=…).",
        };

        public void AddTo(Command command)
        {
            command.Options.Add(DataDir);
            command.Options.Add(Journal);
        }

        /// <summary>
        /// The journal the flags name; a --journal meant as a PostgreSQL connection string
        /// (<see cref="JournalSettings.IsConnectionString"/>) that is not a valid one is bad input.
        /// </summary>
        public JournalSettings Read(ParseResult parsed)
        {
            var journal = new JournalSettings(Path.GetFullPath(parsed.GetValue(DataDir)!), parsed.GetValue(Journal));
            if (journal.ConnectionStringProblem() is { } problem)
                throw new InvalidInputException($"--journal: not a valid PostgreSQL connection string: {problem} (keys are Host, Port, Database, Username, Password, …)");
            return journal;
        }

        /// <summary>Refuses a journal that is not there, rather than creating an empty one.</summary>
        public JournalSettings ReadExisting(ParseResult parsed)
        {
            var journal = Read(parsed);
            if (!journal.Exists) throw new InvalidInputException($"{journal.JournalFile}: no journal here (run a sweep first, or pass --data-dir or --journal)");
            return journal;
        }
    }

    /// <summary>--port, --hostname and --join: a node of a cluster instead of a process on its own.</summary>
    private sealed class ClusterFlags(bool portRequired)
    {
        public Option<int?> Port { get; } = new("--port") { Description = portRequired ? "The port this node listens on [default: a free one]." : "Run as a cluster node listening on this port (the first node needs a fixed one)." };

        public Option<string> Hostname { get; } = new("--hostname") { Description = "The address this node binds and is reached at.", DefaultValueFactory = _ => ClusterOptions.DefaultHostname };

        public Option<string?> Join { get; } = new("--join") { Description = "HOST:PORT of a node of the cluster to join.", Required = portRequired };

        public void AddTo(Command command)
        {
            command.Options.Add(Port);
            command.Options.Add(Hostname);
            command.Options.Add(Join);
        }

        /// <summary>Null when this is not a cluster node (no --port and no --join).</summary>
        public ClusterOptions? Read(ParseResult parsed, bool coordinatorCapable, bool hostsWorkers)
        {
            var port = parsed.GetValue(Port);
            var join = parsed.GetValue(Join);
            if (port is null && join is null && !portRequired) return null;
            return new ClusterOptions(parsed.GetValue(Hostname)!, port ?? 0, join, coordinatorCapable, hostsWorkers);
        }
    }

    private static Option<int?> WorkersOption() => new("--workers") { Description = "Worker slots on this machine [default: one per CUDA device, else one per core]." };

    private static Option<int?> ThreadsOption() => new("--threads") { Description = "LibTorch threads per worker slot [default: cores / slots]." };

    public static Command Run(TextWriter output)
    {
        var spec = new Argument<string>("SPEC") { Description = "The sweep spec (HOCON), e.g. hocon/sweeps/paper-lenet.conf." };
        var journalOptions = new JournalOptions();
        var sweepId = new Option<string?>("--sweep-id") { Description = "Name the sweep [default: NAME-yyyyMMdd-HHmmss]." };
        var workers = WorkersOption();
        var threads = ThreadsOption();
        var dashboard = new Option<bool>("--dashboard") { Description = $"Serve the web dashboard on 127.0.0.1 while the sweep runs (port: --dashboard-port, default {Dashboard.DashboardServer.DefaultPort})." };
        var dashboardPort = new Option<int>("--dashboard-port") { Description = "The dashboard's port (0: a free one).", DefaultValueFactory = _ => Dashboard.DashboardServer.DefaultPort };
        var set = new Option<string[]>("--set") { Description = "Override a spec key, e.g. --set sweep.max-iter=300 (repeatable).", AllowMultipleArgumentsPerToken = false };
        var clusterFlags = new ClusterFlags(portRequired: false);
        var command = new Command("run", "Run a sweep to its end: on this machine, or with --port as the first node of a cluster.") { spec, sweepId, workers, threads, set, dashboard, dashboardPort };
        journalOptions.AddTo(command);
        clusterFlags.AddTo(command);
        command.SetAction((parsed, cancellation) =>
        {
            var definition = SweepSpecLoader.Load(parsed.GetValue(spec)!, parsed.GetValue(set) ?? []);
            var givenId = parsed.GetValue(sweepId);
            var id = givenId ?? $"{Slug(definition.Name)}-{DateTime.Now:yyyyMMdd-HHmmss}";
            RequireValidId(id);
            var journal = journalOptions.Read(parsed);
            int? workerCount = parsed.GetValue(workers), threadCount = parsed.GetValue(threads);
            var cluster = clusterFlags.Read(parsed, coordinatorCapable: true, hostsWorkers: workerCount != 0);
            RequireLocalSlots(workerCount, cluster);
            int? servePort = parsed.GetValue(dashboard) ? parsed.GetValue(dashboardPort) : null;
            if (servePort is < 0 or > 65535) throw new InvalidInputException($"--dashboard-port {servePort}: not a port");
            return SweepRun.RunAsync(journal, id, new StartSweep(definition), model => WorkerLayout.For(model, workerCount, threadCount), output, cancellation, cluster, servePort, idIsDefault: givenId is null);
        });
        return command;
    }

    public static Command Resume(TextWriter output)
    {
        var sweepId = new Argument<string>("ID") { Description = "The sweep to continue (see 'sweep status')." };
        var journalOptions = new JournalOptions();
        var workers = WorkersOption();
        var threads = ThreadsOption();
        var clusterFlags = new ClusterFlags(portRequired: false);
        var command = new Command("resume", "Continue an interrupted sweep: finished trials are never re-run, running ones continue from their checkpoints. With --port/--join: as a cluster node (a standby coordinator).") { sweepId, workers, threads };
        journalOptions.AddTo(command);
        clusterFlags.AddTo(command);
        command.SetAction((parsed, cancellation) =>
        {
            var id = parsed.GetValue(sweepId)!;
            RequireValidId(id);
            var journal = journalOptions.ReadExisting(parsed);
            int? workerCount = parsed.GetValue(workers), threadCount = parsed.GetValue(threads);
            var cluster = clusterFlags.Read(parsed, coordinatorCapable: true, hostsWorkers: workerCount != 0);
            RequireLocalSlots(workerCount, cluster);
            return SweepRun.RunAsync(journal, id, new ResumeSweep(), model => WorkerLayout.For(model, workerCount, threadCount), output, cancellation, cluster);
        });
        return command;
    }

    public static Command Worker(TextWriter output)
    {
        var journalOptions = new JournalOptions();
        var clusterFlags = new ClusterFlags(portRequired: true);
        var workers = WorkersOption();
        var threads = ThreadsOption();
        var command = new Command("worker", "Join a cluster and run trials on this machine until stopped (Ctrl+C leaves gracefully). With --journal it may also host the coordinator.") { workers, threads };
        journalOptions.AddTo(command);
        clusterFlags.AddTo(command);
        command.SetAction(async (parsed, cancellation) =>
        {
            var journal = journalOptions.Read(parsed);
            bool coordinatorCapable = parsed.GetValue(journalOptions.Journal) is not null;
            var cluster = clusterFlags.Read(parsed, coordinatorCapable, hostsWorkers: true)!;
            cluster.Validate(journal);
            cluster.RequirePortFree();
            WorkerProgram.RequireStartable();
            GpuWorker.SelfTest.SelfTestFault.FromEnvironment();
            var layout = WorkerLayout.For(Protocol.Specs.ModelKind.Lenet, parsed.GetValue(workers), parsed.GetValue(threads));
            await using var node = await SweepSystem.StartAsync(journal, cluster, logName: $"worker-{Environment.MachineName}-{Environment.ProcessId}");
            var proxy = Cluster.ClusterNode.StartDirector(node.System, journal, coordinatorCapable, output);
            var slots = WorkerSlots.Start(node.System, proxy, Protocol.Specs.ModelKind.Lenet, layout);
            output.WriteLine($"worker node {Akka.Cluster.Cluster.Get(node.System).SelfAddress} joining {cluster.Join}: {layout.Workers} slot(s) x {layout.Threads} thread(s){(coordinatorCapable ? "; may host the coordinator" : "")}");
            output.Flush();
            var stopped = await Task.WhenAny(Task.Delay(Timeout.Infinite, cancellation), node.System.WhenTerminated);
            if (stopped == node.System.WhenTerminated)
            {
                output.WriteLine("this node was removed from the cluster (downed): start it again to rejoin");
                return SweepCommandLine.ExitFailed;
            }
            output.WriteLine("leaving: handing running trials back to the coordinator…");
            output.Flush();
            await Task.WhenAll(slots.Select(slot => slot.Ask<GpuWorker.Workers.TrialWorker.Left>(new GpuWorker.Workers.TrialWorker.Leave(), TimeSpan.FromMinutes(2))));
            await Akka.Actor.CoordinatedShutdown.Get(node.System).Run(Akka.Actor.CoordinatedShutdown.ClusterLeavingReason.Instance);
            output.WriteLine("left the cluster");
            return SweepCommandLine.ExitOk;
        });
        return command;
    }

    public static Command Watch(TextWriter output)
    {
        var sweepId = new Argument<string>("ID") { Description = "The sweep to follow." };
        var journalOptions = new JournalOptions();
        var command = new Command("watch", "Follow a sweep's progress from any machine that reaches its journal, until it ends.") { sweepId };
        journalOptions.AddTo(command);
        command.SetAction((parsed, cancellation) =>
        {
            var id = parsed.GetValue(sweepId)!;
            RequireValidId(id);
            return SweepWatch.RunAsync(journalOptions.ReadExisting(parsed), id, output, cancellation);
        });
        return command;
    }

    public static Command Logs(TextWriter output)
    {
        var sweepId = new Argument<string>("ID") { Description = "The sweep whose log lines to print." };
        var trial = new Option<string?>("--trial") { Description = "Only this trial's lines (its name, e.g. CASE8 or b32-lr0.02)." };
        var follow = new Option<bool>("--follow") { Description = "Keep printing new lines as they are written, until Ctrl+C." };
        var journalOptions = new JournalOptions();
        var command = new Command("logs", "Print one sweep's or one trial's log lines from DATA-DIR/logs.") { sweepId, trial, follow };
        journalOptions.AddTo(command);
        command.SetAction((parsed, cancellation) =>
        {
            var id = parsed.GetValue(sweepId)!;
            RequireValidId(id);
            return SweepLogs.RunAsync(journalOptions.Read(parsed), id, parsed.GetValue(trial), parsed.GetValue(follow), output, cancellation);
        });
        return command;
    }

    public static Command Status(TextWriter output)
    {
        var sweepId = new Argument<string?>("ID") { Description = "The sweep to show [default: list every sweep].", Arity = ArgumentArity.ZeroOrOne };
        var journalOptions = new JournalOptions();
        var json = new Option<bool>("--json") { Description = "Machine-readable JSON." };
        var command = new Command("status", "Show the sweeps in a journal, or one sweep's trials.") { sweepId, json };
        journalOptions.AddTo(command);
        command.SetAction(async (parsed, cancellation) =>
        {
            var journal = journalOptions.ReadExisting(parsed);
            var id = parsed.GetValue(sweepId);
            if (id is null)
            {
                var states = new List<SweepState>();
                foreach (var each in await SweepJournal.ListAsync(journal, cancellation))
                {
                    if (await SweepJournal.ReadAsync(journal, each, cancellation) is { } found) states.Add(found);
                }
                if (parsed.GetValue(json))
                {
                    var rows = new List<object>();
                    foreach (var s in states)
                    {
                        var liveness = await SweepLiveness.ReadAsync(journal, s.SweepId, s.Phase == SweepPhase.Running);
                        rows.Add(new { sweepId = s.SweepId, name = s.Definition.Name, state = s.Phase.ToString(), ownerGone = liveness?.OwnerGone ?? false, trials = s.Trials.Count, finished = s.FinishedCount });
                    }
                    output.WriteLine(System.Text.Json.JsonSerializer.Serialize(rows));
                }
                else
                {
                    if (states.Count == 0) output.WriteLine($"no sweeps in {journal.Description}");
                    foreach (var s in states)
                    {
                        var liveness = await SweepLiveness.ReadAsync(journal, s.SweepId, s.Phase == SweepPhase.Running);
                        var phase = liveness is { OwnerGone: true } ? "interrupted (no process owns it)" : s.Phase.ToString().ToLowerInvariant();
                        output.WriteLine($"{s.SweepId}  {SafeText.Line(s.Definition.Name)}  {phase}  {s.FinishedCount}/{s.Trials.Count} finished  started {s.StartedAt.LocalDateTime:yyyy-MM-dd HH:mm:ss}");
                    }
                }
                return SweepCommandLine.ExitOk;
            }

            RequireValidId(id);
            var state = await SweepJournal.ReadAsync(journal, id, cancellation) ?? throw new InvalidInputException($"no sweep '{id}' in {journal.Description}");
            var owner = await SweepLiveness.ReadAsync(journal, id, state.Phase == SweepPhase.Running);
            if (parsed.GetValue(json))
            {
                output.WriteLine(StatusView.ToJson(state, owner));
            }
            else
            {
                if (owner is not null) output.WriteLine($"sweep {id}: {owner.Summary}");
                output.WriteLine(StatusView.Table(state, owner));
            }
            return SweepCommandLine.ExitOk;
        });
        return command;
    }

    /// <summary>A sweep on this machine alone needs a slot to run on; --workers 0 is for a cluster node that only coordinates.</summary>
    private static void RequireLocalSlots(int? workers, ClusterOptions? cluster)
    {
        if (workers == 0 && cluster is null)
            throw new InvalidInputException("--workers 0: a sweep on this machine alone needs at least one worker slot (0 is for a cluster node that only coordinates: add --port, and start workers with 'sweep worker --join')");
    }

    internal static void RequireValidId(string id)
    {
        if (!ValidId().IsMatch(id))
            throw new InvalidInputException($"sweep id '{id}': use letters, digits, '.', '_' and '-' (at most 100, starting with a letter or digit)");
    }

    private static string Slug(string name)
    {
        var slug = NotIdCharacters().Replace(name.Trim().ToLowerInvariant(), "-").Trim('-', '.', '_');
        return slug.Length == 0 ? "sweep" : slug[..Math.Min(slug.Length, 60)];
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    private static partial Regex ValidId();

    [GeneratedRegex("[^a-z0-9._-]+")]
    private static partial Regex NotIdCharacters();
}
