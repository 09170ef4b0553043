using System.Globalization;
using System.Text.RegularExpressions;

namespace Sweep.GpuWorker.Training;

/// <summary>
/// The names of a sweep trial's checkpoint files, in one place. A trial has a base path
/// <c>DIR/SWEEP-ID/TRIAL-ID.ckpt</c> (<see cref="Protocol.Messages.RunTrial.CheckpointPath"/>); its attempts
/// write one file per checkpoint iteration next to it, <c>DIR/SWEEP-ID/TRIAL-ID.it000000300.ckpt</c>
/// (the iteration in nine digits), never overwriting the file of another iteration. So a checkpoint
/// written after the journal's last <c>TrialCheckpointed</c> (the journal failed, or the process was
/// killed, between the write and the persist) can never stand in for the journalled one: a resume
/// reads exactly the file the journal names. The base path itself is what sweeps wrote before this
/// scheme (one file, overwritten); a journal that names it still resumes from it.
/// </summary>
public static partial class CheckpointFiles
{
    /// <summary>The extension of every checkpoint file.</summary>
    public const string Extension = ".ckpt";

    /// <summary>The suffix of a file being written (renamed to its final name once complete).</summary>
    public const string PartialSuffix = ".partial";

    /// <summary>
    /// The versioned file of the checkpoint at <paramref name="iteration"/> of the trial whose base
    /// path is <paramref name="basePath"/>: <c>TRIAL.ckpt</c> → <c>TRIAL.it000000300.ckpt</c> in the
    /// same folder (a base path without the <c>.ckpt</c> extension keeps its whole name as the stem).
    /// </summary>
    /// <param name="basePath">The trial's base checkpoint path, e.g. <c>DIR/SWEEP-ID/TRIAL-ID.ckpt</c>.</param>
    /// <param name="iteration">The iteration the checkpoint holds (number of updates done), 0 to 999,999,999.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="iteration"/> is negative or has more than nine digits.</exception>
    public static string Versioned(string basePath, int iteration)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(iteration);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(iteration, 999_999_999);
        return Path.Combine(Path.GetDirectoryName(basePath) ?? "", string.Create(CultureInfo.InvariantCulture, $"{Stem(basePath)}.it{iteration:D9}{Extension}"));
    }

    /// <summary>
    /// The iteration of <paramref name="path"/> when it is one of the versioned files of the trial
    /// whose base path is <paramref name="basePath"/> (in any folder: only the file name is compared),
    /// null otherwise (another trial's file, the unversioned base path, a <c>.partial</c> file).
    /// </summary>
    public static int? IterationOf(string basePath, string path)
    {
        var match = VersionedName().Match(Path.GetFileName(path));
        return match.Success && !match.Groups["partial"].Success && match.Groups["stem"].Value == Stem(basePath)
            ? int.Parse(match.Groups["iteration"].Value, NumberStyles.None, CultureInfo.InvariantCulture)
            : null;
    }

    /// <summary>
    /// The trial's base path of a versioned file (<c>DIR/TRIAL.it000000300.ckpt</c> → <c>DIR/TRIAL.ckpt</c>),
    /// or null when <paramref name="path"/> is no versioned file (an unversioned path, a <c>.partial</c> file).
    /// </summary>
    /// <param name="path">A checkpoint file's path.</param>
    public static string? BaseOf(string path)
    {
        var match = VersionedName().Match(Path.GetFileName(path));
        return match.Success && !match.Groups["partial"].Success
            ? Path.Combine(Path.GetDirectoryName(path) ?? "", match.Groups["stem"].Value + Extension)
            : null;
    }

    /// <summary>
    /// Every versioned file of the trial whose base path is <paramref name="basePath"/> in
    /// <paramref name="directory"/>, with what a write interrupted before its rename left
    /// (<c>….it000000300.ckpt.partial</c>); no other trial's file and never the unversioned base
    /// path. Empty when the folder does not exist.
    /// </summary>
    public static IReadOnlyList<string> VersionedIn(string basePath, string directory)
    {
        if (!Directory.Exists(directory)) return [];
        var stem = Stem(basePath);
        // The pattern only narrows the listing; the expression decides.
        var pattern = stem.AsSpan().IndexOfAny('*', '?') >= 0 ? "*" : stem + ".it*";
        return Directory.EnumerateFiles(directory, pattern)
            .Where(path => VersionedName().Match(Path.GetFileName(path)) is { Success: true } match && match.Groups["stem"].Value == stem)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// Checks that a checkpoint read from <paramref name="path"/> can stand for this trial: it was
    /// written for this trial's spec (same fingerprint, <see cref="TrainerCheckpoint.Fingerprint"/>),
    /// it holds an iteration in 0..max-iter, and, for a versioned file, the iteration its name (and so
    /// the journal) gives. A file that fails is unusable like a damaged one
    /// (<see cref="CheckpointUnreadableException"/>): replaced by another trial's file, or renamed.
    /// Both loaders (the trainer's and the synthetic model's) call it before restoring anything.
    /// </summary>
    /// <param name="path">The checkpoint file read.</param>
    /// <param name="fingerprint">The fingerprint the file holds.</param>
    /// <param name="iteration">The iteration the file holds (updates done).</param>
    /// <param name="expectedFingerprint">This trial's fingerprint.</param>
    /// <param name="maxIter">This trial's max-iter.</param>
    /// <exception cref="CheckpointUnreadableException">One of the three does not hold; the cause says which.</exception>
    public static void CheckBelongs(string path, string fingerprint, int iteration, string expectedFingerprint, int maxIter)
    {
        if (fingerprint != expectedFingerprint)
            throw new CheckpointUnreadableException(path, $"checkpoint belongs to another trial ({fingerprint}), this one is {expectedFingerprint}");
        if (iteration < 0 || iteration > maxIter)
            throw new CheckpointUnreadableException(path, $"checkpoint is at iteration {iteration}, outside 0..{maxIter}");
        var match = VersionedName().Match(Path.GetFileName(path));
        if (match.Success && int.Parse(match.Groups["iteration"].Value, NumberStyles.None, CultureInfo.InvariantCulture) is var named && named != iteration)
            throw new CheckpointUnreadableException(path, $"checkpoint holds iteration {iteration}, but its name (and the journal) says {named}");
    }

    /// <summary>
    /// Deletes <paramref name="paths"/> (a path already gone is not an error) and returns what could
    /// not be deleted, one "path: error" line each: clean-up never fails an attempt.
    /// </summary>
    public static IReadOnlyList<string> Delete(IEnumerable<string> paths)
    {
        var failures = new List<string>();
        foreach (var path in paths)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                failures.Add($"{path}: {e.Message}");
            }
        }
        return failures;
    }

    /// <summary>Whether two paths name the same file (compared in full, as the file system spells them).</summary>
    public static bool SameFile(string a, string b) => string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);

    private static string Stem(string basePath)
    {
        var name = Path.GetFileName(basePath);
        return name.EndsWith(Extension, StringComparison.Ordinal) ? name[..^Extension.Length] : name;
    }

    [GeneratedRegex(@"^(?<stem>.+)\.it(?<iteration>[0-9]{9})\.ckpt(?<partial>\.partial)?$", RegexOptions.CultureInvariant)]
    private static partial Regex VersionedName();
}
