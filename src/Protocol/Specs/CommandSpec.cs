using System.Globalization;
using Sweep.Protocol.Training;

namespace Sweep.Protocol.Specs;

/// <summary>
/// A command trial's program (<c>model = command</c>): run once per attempt by the worker, in a
/// working directory of its own, with the trial's parameters in its arguments and environment; it
/// reports test points as JSON lines on its standard output (the protocol: docs/command-trials.md).
/// </summary>
/// <param name="Arguments">
/// The program and its arguments, e.g. <c>["python3", "${spec-dir}/train.py", "--lr", "${base-lr}"]</c>:
/// <c>${KEY}</c> is replaced by the trial's parameter KEY (<see cref="CommandParameters.Of"/>),
/// <c>${spec-dir}</c> by <paramref name="SpecDirectory"/>.
/// </param>
/// <param name="SpecDirectory">The absolute folder of the spec file the sweep was started from.</param>
/// <param name="GraceSeconds">When an attempt is stopped: seconds between SIGTERM and SIGKILL.</param>
/// <param name="OutOfMemoryPattern">A .NET regular expression searched in each line of standard error: a match makes a failed attempt an out-of-memory one (the sweep's <c>on-out-of-memory</c> policy).</param>
public sealed record CommandSpec(
    IReadOnlyList<string> Arguments,
    string SpecDirectory,
    double GraceSeconds = CommandSpec.DefaultGraceSeconds,
    string OutOfMemoryPattern = CommandSpec.DefaultOutOfMemoryPattern)
{
    /// <summary>The placeholder for <see cref="SpecDirectory"/> in <see cref="Arguments"/>: <c>${spec-dir}</c>.</summary>
    public const string SpecDirectoryPlaceholder = "spec-dir";

    /// <summary>A placeholder in an argument: <c>${KEY}</c>, KEY in group 1.</summary>
    public static readonly System.Text.RegularExpressions.Regex Placeholder = new(@"\$\{([^}]*)\}", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>The names a placeholder may have: the parameters' keys (<see cref="CommandParameters.Keys"/>) and <c>spec-dir</c>, sorted.</summary>
    public static IReadOnlyList<string> PlaceholderNames { get; } = [.. CommandParameters.Keys.Append(SpecDirectoryPlaceholder).Order(StringComparer.Ordinal)];

    /// <summary>The placeholders an argument may name in a sweep whose trials also have the named parameters <paramref name="parameters"/>.</summary>
    public static IReadOnlyList<string> PlaceholderNamesWith(IEnumerable<string> parameters) => [.. PlaceholderNames.Concat(parameters).Distinct().Order(StringComparer.Ordinal)];

    /// <summary>The first placeholder in <paramref name="argument"/> that names neither a parameter nor <c>spec-dir</c> (its name), or null.</summary>
    public static string? UnknownPlaceholder(string argument, IEnumerable<string>? parameters = null)
    {
        var known = PlaceholderNamesWith(parameters ?? []);
        return Placeholder.Matches(argument).Select(m => m.Groups[1].Value).FirstOrDefault(name => !known.Contains(name, StringComparer.Ordinal));
    }

    /// <summary>What an unknown placeholder is told with: "unknown placeholder ${NAME} (known: ${base-lr}, …)".</summary>
    public static string UnknownPlaceholderProblem(string name, IEnumerable<string>? parameters = null) =>
        $"unknown placeholder ${{{name}}} (known: {string.Join(", ", PlaceholderNamesWith(parameters ?? []).Select(k => "${" + k + "}"))})";

    /// <summary>
    /// The program's file: <paramref name="program"/> itself when it holds a '/' (relative to
    /// <paramref name="directory"/>), else the first match on PATH; null when there is no such
    /// executable file.
    /// </summary>
    public static string? FindProgram(string program, string directory)
    {
        static bool Executable(string path) =>
            File.Exists(path) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0);
        if (program.Contains('/')) return Executable(Path.GetFullPath(program, directory)) ? Path.GetFullPath(program, directory) : null;
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        return path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Select(dir => Path.Combine(dir, program)).FirstOrDefault(Executable);
    }

    /// <summary>10 s between SIGTERM and SIGKILL.</summary>
    public const double DefaultGraceSeconds = 10;

    /// <summary>CUDA's and PyTorch's out-of-memory messages, Python's MemoryError, C++'s bad_alloc and the C library's ENOMEM text.</summary>
    public const string DefaultOutOfMemoryPattern = @"CUDA out of memory|CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED|OutOfMemoryError|\bMemoryError\b|std::bad_alloc|Cannot allocate memory";
}

/// <summary>The parameters a command trial receives: their names and their text.</summary>
public static class CommandParameters
{
    /// <summary>
    /// The trial's parameters by key, in this order: batch-size, test-batch-size, base-lr, max-iter,
    /// test-interval, seed (the keys of <see cref="TrialFields"/>), then its named parameters in name
    /// order (<see cref="TrialSpec.Parameters"/>, as <see cref="ParameterValue.Text"/>). Numbers are
    /// written in the invariant culture, a rate in its shortest round-trip form (0.01, 1E-05).
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Of(TrialSpec spec) =>
    [
        new(TrialFields.BatchSize.Key, Text(spec.BatchSize)),
        new(TrialFields.TestBatchSize.Key, Text(spec.TestBatchSize)),
        new(TrialFields.BaseLr.Key, spec.BaseLr.ToString("R", CultureInfo.InvariantCulture)),
        new(TrialFields.MaxIter.Key, Text(spec.MaxIter)),
        new(TrialFields.TestInterval.Key, Text(spec.TestInterval)),
        new(TrialFields.Seed.Key, Text(spec.Seed)),
        .. (spec.Parameters?.Items ?? []).Select(p => new KeyValuePair<string, string>(p.Name, p.Value.Text)),
    ];

    /// <summary>The parameters' keys, in the order <see cref="Of"/> gives them.</summary>
    public static IReadOnlyList<string> Keys { get; } =
        [TrialFields.BatchSize.Key, TrialFields.TestBatchSize.Key, TrialFields.BaseLr.Key, TrialFields.MaxIter.Key, TrialFields.TestInterval.Key, TrialFields.Seed.Key];

    /// <summary>The environment variable a parameter is also given in: <c>SWEEP_PARAM_</c> and the key in capitals with '_' for '-' (<c>base-lr</c> → <c>SWEEP_PARAM_BASE_LR</c>).</summary>
    public static string EnvironmentVariable(string key) => "SWEEP_PARAM_" + key.Replace('-', '_').ToUpperInvariant();

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
