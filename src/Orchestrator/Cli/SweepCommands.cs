using System.CommandLine;
using System.Text.RegularExpressions;
using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Orchestrator.Running;
using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Messages;

namespace Sweep.Orchestrator.Cli;

/// <summary>`sweep run`, `sweep resume` and `sweep status`: sweeps on this machine, kept in a journal under a data directory.</summary>
public static partial class SweepCommands
{
    /// <summary>--data-dir and --journal: where the journal and checkpoints are.</summary>
    private sealed class JournalOptions
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

        public JournalSettings Read(ParseResult parsed) => new(Path.GetFullPath(parsed.GetValue(DataDir)!), parsed.GetValue(Journal));

        /// <summary>Refuses a journal that is not there, rather than creating an empty one.</summary>
        public JournalSettings ReadExisting(ParseResult parsed)
        {
            var journal = Read(parsed);
            if (!journal.Exists) throw new InvalidInputException($"{journal.JournalFile}: no journal here (run a sweep first, or pass --data-dir or --journal)");
            return journal;
        }
    }

    private static Option<int?> WorkersOption() => new("--workers") { Description = "Worker slots on this machine [default: one per CUDA device, else one CPU slot]." };

    private static Option<int?> ThreadsOption() => new("--threads") { Description = "LibTorch threads per worker slot [default: cores / slots]." };

    public static Command Run(TextWriter output)
    {
        var spec = new Argument<string>("SPEC") { Description = "The sweep spec (HOCON), e.g. hocon/sweeps/paper-lenet.conf." };
        var journalOptions = new JournalOptions();
        var sweepId = new Option<string?>("--sweep-id") { Description = "Name the sweep [default: NAME-yyyyMMdd-HHmmss]." };
        var workers = WorkersOption();
        var threads = ThreadsOption();
        var set = new Option<string[]>("--set") { Description = "Override a spec key, e.g. --set sweep.max-iter=300 (repeatable).", AllowMultipleArgumentsPerToken = false };
        var command = new Command("run", "Run a sweep on this machine to its end.") { spec, sweepId, workers, threads, set };
        journalOptions.AddTo(command);
        command.SetAction((parsed, cancellation) =>
        {
            var definition = SweepSpecLoader.Load(parsed.GetValue(spec)!, parsed.GetValue(set) ?? []);
            var id = parsed.GetValue(sweepId) ?? $"{Slug(definition.Name)}-{DateTime.Now:yyyyMMdd-HHmmss}";
            RequireValidId(id);
            var journal = journalOptions.Read(parsed);
            int? workerCount = parsed.GetValue(workers), threadCount = parsed.GetValue(threads);
            return LocalSweep.RunAsync(journal, id, new StartSweep(definition), s => WorkerLayout.For(s.Definition.Model, workerCount, threadCount), output, cancellation);
        });
        return command;
    }

    public static Command Resume(TextWriter output)
    {
        var sweepId = new Argument<string>("ID") { Description = "The sweep to continue (see 'sweep status')." };
        var journalOptions = new JournalOptions();
        var workers = WorkersOption();
        var threads = ThreadsOption();
        var command = new Command("resume", "Continue an interrupted sweep: finished trials are never re-run, running ones continue from their checkpoints.") { sweepId, workers, threads };
        journalOptions.AddTo(command);
        command.SetAction((parsed, cancellation) =>
        {
            var id = parsed.GetValue(sweepId)!;
            RequireValidId(id);
            var journal = journalOptions.ReadExisting(parsed);
            int? workerCount = parsed.GetValue(workers), threadCount = parsed.GetValue(threads);
            return LocalSweep.RunAsync(journal, id, new ResumeSweep(), s => WorkerLayout.For(s.Definition.Model, workerCount, threadCount), output, cancellation);
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
        command.SetAction(async (parsed, _) =>
        {
            var journal = journalOptions.ReadExisting(parsed);
            await using var system = await SweepSystem.StartAsync(journal);
            var id = parsed.GetValue(sweepId);
            if (id is null)
            {
                var states = new List<SweepState>();
                foreach (var each in await SweepJournal.ListAsync(system.System))
                {
                    if (await SweepJournal.ReadAsync(system.System, each) is { } found) states.Add(found);
                }
                if (parsed.GetValue(json))
                {
                    output.WriteLine(System.Text.Json.JsonSerializer.Serialize(states.Select(s => new
                    {
                        sweepId = s.SweepId, name = s.Definition.Name, state = s.Phase.ToString(), trials = s.Trials.Count, finished = s.FinishedCount,
                    })));
                }
                else
                {
                    if (states.Count == 0) output.WriteLine($"no sweeps in {journal.Description}");
                    foreach (var s in states)
                        output.WriteLine($"{s.SweepId}  {s.Definition.Name}  {s.Phase.ToString().ToLowerInvariant()}  {s.FinishedCount}/{s.Trials.Count} finished  started {s.StartedAt.LocalDateTime:yyyy-MM-dd HH:mm:ss}");
                }
                return SweepCommandLine.ExitOk;
            }

            RequireValidId(id);
            var state = await SweepJournal.ReadAsync(system.System, id) ?? throw new InvalidInputException($"no sweep '{id}' in {journal.Description}");
            output.WriteLine(parsed.GetValue(json) ? SweepReport.ToJson(state) : SweepReport.Table(state));
            return SweepCommandLine.ExitOk;
        });
        return command;
    }

    private static void RequireValidId(string id)
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
