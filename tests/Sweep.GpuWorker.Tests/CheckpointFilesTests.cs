using Sweep.GpuWorker.Training;
using Sweep.Protocol;

namespace Sweep.GpuWorker.Tests;

/// <summary>The names of a trial's checkpoint files, and what the trainer's loader calls unreadable.</summary>
public sealed class CheckpointFilesTests : IDisposable
{
    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void A_versioned_file_sits_next_to_the_base_path_with_the_iteration_in_nine_digits()
    {
        Assert.Equal("/data/checkpoints/s1/abc123.it000000300.ckpt", CheckpointFiles.Versioned("/data/checkpoints/s1/abc123.ckpt", 300));
        Assert.Equal("/d/abc123.it000000000.ckpt", CheckpointFiles.Versioned("/d/abc123.ckpt", 0));
        Assert.Equal("/d/abc123.it999999999.ckpt", CheckpointFiles.Versioned("/d/abc123.ckpt", 999_999_999));
        Assert.Equal("/d/state.bin.it000000040.ckpt", CheckpointFiles.Versioned("/d/state.bin", 40));
        Assert.Throws<ArgumentOutOfRangeException>(() => CheckpointFiles.Versioned("/d/abc123.ckpt", -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => CheckpointFiles.Versioned("/d/abc123.ckpt", 1_000_000_000));
    }

    [Fact]
    public void The_options_name_every_checkpoint_through_one_method_and_sweep_trains_one_file_stays_one_file()
    {
        var single = new TrainingOptions(1, "cpu", "/d/trial.ckpt");
        var versioned = single with { VersionedCheckpoints = true };

        Assert.Equal(("/d/trial.ckpt", "/d/trial.ckpt"), (single.CheckpointFileAt(100), single.CheckpointFileAt(200)));
        Assert.Equal(("/d/trial.it000000100.ckpt", "/d/trial.it000000200.ckpt"), (versioned.CheckpointFileAt(100), versioned.CheckpointFileAt(200)));
        Assert.Null(new TrainingOptions(1, VersionedCheckpoints: true).CheckpointFileAt(100));
    }

    [Fact]
    public void The_iteration_is_read_back_only_from_the_trials_own_finished_versioned_files()
    {
        const string basePath = "/d/abc123.ckpt";

        Assert.Equal(300, CheckpointFiles.IterationOf(basePath, "/d/abc123.it000000300.ckpt"));
        Assert.Equal(40, CheckpointFiles.IterationOf(basePath, "/elsewhere/abc123.it000000040.ckpt"));
        Assert.Null(CheckpointFiles.IterationOf(basePath, "/d/abc123.ckpt")); // the unversioned file of older sweeps
        Assert.Null(CheckpointFiles.IterationOf(basePath, "/d/abc123.it000000300.ckpt.partial"));
        Assert.Null(CheckpointFiles.IterationOf(basePath, "/d/abc1234.it000000300.ckpt"));
        Assert.Null(CheckpointFiles.IterationOf(basePath, "/d/xabc123.it000000300.ckpt"));
        Assert.Null(CheckpointFiles.IterationOf(basePath, "/d/abc123.it300.ckpt"));
    }

    [Fact]
    public void Listing_finds_the_trials_versioned_files_and_unfinished_writes_and_nothing_else()
    {
        var basePath = temp.File("abc123.ckpt");
        string[] own = ["abc123.it000000100.ckpt", "abc123.it000000200.ckpt", "abc123.it000000300.ckpt.partial"];
        string[] others = ["abc123.ckpt", "abc1234.it000000100.ckpt", "other.it000000100.ckpt", "abc123.it000000100.ckpt.bak", "abc123.it100.ckpt"];
        foreach (var name in own.Concat(others)) File.WriteAllText(temp.File(name), name);

        var listed = CheckpointFiles.VersionedIn(basePath, temp.Path);

        Assert.Equal(own.Select(temp.File), listed);
        Assert.Empty(CheckpointFiles.VersionedIn(basePath, temp.File("no-such-folder")));
        Assert.Empty(CheckpointFiles.Delete([.. listed, temp.File("already-gone.it000000100.ckpt")]));
        Assert.Equal(others.Order(StringComparer.Ordinal), Directory.GetFiles(temp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Every_truncation_of_a_trainer_checkpoint_is_unreadable_and_the_whole_file_reads_back()
    {
        var path = temp.File("small.ckpt");
        var original = new TrainerCheckpoint("fingerprint", 40, 1, 7, new IntervalSums(1.5, 3, 4, 2, 0.25), new Dictionary<string, (long[], float[])>
        {
            ["model.w"] = ([2, 3], [1, 2, 3, 4, 5, 6]),
            ["history.w"] = ([6], [0, 0, 0, 0, 0, 0.5f]),
        });
        original.Save(path);
        var bytes = File.ReadAllBytes(path);

        var read = TrainerCheckpoint.Load(path);
        Assert.Equal((original.SpecFingerprint, original.Iteration, original.Epoch, original.Cursor, original.Interval), (read.SpecFingerprint, read.Iteration, read.Epoch, read.Cursor, read.Interval));
        Assert.Equal(original.Tensors["model.w"].Values, read.Tensors["model.w"].Values);
        Assert.Equal(original.Tensors["history.w"].Shape, read.Tensors["history.w"].Shape);

        var damaged = temp.File("damaged.ckpt");
        for (int length = 0; length < bytes.Length; length++)
        {
            File.WriteAllBytes(damaged, bytes[..length]);
            var error = Assert.Throws<CheckpointUnreadableException>(() => TrainerCheckpoint.Load(damaged));
            Assert.Equal(damaged, error.Path);
        }
        File.WriteAllBytes(damaged, [.. bytes, 0]);
        Assert.Equal("damaged checkpoint (1 bytes after the last tensor)", Assert.Throws<CheckpointUnreadableException>(() => TrainerCheckpoint.Load(damaged)).Cause);
        var missing = Assert.Throws<InvalidInputException>(() => TrainerCheckpoint.Load(temp.File("missing.ckpt")));
        Assert.Equal($"{temp.File("missing.ckpt")}: checkpoint not found", missing.Message);
    }

    [Fact]
    public void A_length_that_claims_more_than_the_file_holds_is_unreadable_before_anything_is_allocated()
    {
        var path = temp.File("lying.ckpt");
        new TrainerCheckpoint("f", 0, 0, 0, IntervalSums.Empty, new Dictionary<string, (long[], float[])> { ["t"] = ([1], [1f]) }).Save(path);
        var bytes = File.ReadAllBytes(path);
        // The value count is the 4 bytes before the last value's 4.
        BitConverter.GetBytes(int.MaxValue).CopyTo(bytes, bytes.Length - 8);
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<CheckpointUnreadableException>(() => TrainerCheckpoint.Load(path));

        Assert.Equal($"damaged checkpoint (tensor 't' claims {int.MaxValue} values, the file has 4 bytes left)", error.Cause);
    }

    [Theory]
    [InlineData("t.it000000300.ckpt", "f", 300, null)]
    [InlineData("t.ckpt", "f", 120, null)]
    [InlineData("t.it000000300.ckpt", "g", 300, "checkpoint belongs to another trial (g), this one is f")]
    [InlineData("t.it000000300.ckpt", "f", 250, "checkpoint holds iteration 250, but its name (and the journal) says 300")]
    [InlineData("t.ckpt", "f", 600, "checkpoint is at iteration 600, outside 0..500")]
    [InlineData("t.ckpt", "f", -1, "checkpoint is at iteration -1, outside 0..500")]
    public void A_checkpoint_belongs_when_its_fingerprint_range_and_name_agree(string name, string fingerprint, int iteration, string? cause)
    {
        var path = temp.File(name);
        void Check() => CheckpointFiles.CheckBelongs(path, fingerprint, iteration, "f", maxIter: 500);
        if (cause is null)
        {
            Check();
            return;
        }
        var error = Assert.Throws<CheckpointUnreadableException>(Check);
        Assert.Equal((path, cause), (error.Path, error.Cause));
    }
}
