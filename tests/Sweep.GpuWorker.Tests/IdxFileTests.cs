using Sweep.GpuWorker.Data;
using Sweep.Protocol;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Tests;

public sealed class IdxFileTests : IDisposable
{
    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reads_images_and_labels_plain_or_gzipped(bool gzipped)
    {
        var images = IdxWriter.Images(3, 28, 28, i => (byte)(i * 7 % 251));
        var labels = IdxWriter.Labels(4, 0, 9);
        var imagesPath = temp.File("images");
        var labelsPath = temp.File("labels");
        File.WriteAllBytes(imagesPath, gzipped ? IdxWriter.Gzip(images) : images);
        File.WriteAllBytes(labelsPath, gzipped ? IdxWriter.Gzip(labels) : labels);

        var readImages = IdxFile.ReadImages(imagesPath);
        var readLabels = IdxFile.ReadLabels(labelsPath);

        Assert.Equal((3, 28, 28), (readImages.Count, readImages.Rows, readImages.Columns));
        Assert.Equal(images[16..], readImages.Pixels);
        Assert.Equal(new byte[] { 4, 0, 9 }, readLabels.Values);
    }

    [Fact]
    public void The_embedded_subset_is_8000_train_and_2000_test_with_every_digit_in_both()
    {
        var data = MnistData.Load(new DatasetSpec(MnistData.EmbeddedPath));

        Assert.Equal(8000, data.Train.Count);
        Assert.Equal(2000, data.Test.Count);
        Assert.Equal(8000 * 784, data.Train.Pixels.Length);
        foreach (var split in new[] { data.Train, data.Test })
        {
            var perDigit = split.Labels.GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal(10, perDigit.Count);
            // Stratified: each digit's share of the split is within a point of 10%.
            Assert.All(perDigit.Values, n => Assert.InRange(n / (double)split.Count, 0.08, 0.12));
        }
        // Shuffled, not grouped by class: the first hundred labels already hold most digits.
        Assert.True(data.Train.Labels.Take(100).Distinct().Count() >= 8);
    }

    [Fact]
    public void Train_and_test_counts_take_the_first_images()
    {
        var data = MnistData.Load(new DatasetSpec(MnistData.EmbeddedPath, TrainCount: 500, TestCount: 100));
        var all = MnistData.Load(new DatasetSpec(MnistData.EmbeddedPath));

        Assert.Equal(500, data.Train.Count);
        Assert.Equal(100, data.Test.Labels.Length);
        Assert.Equal(all.Train.Labels[..500], data.Train.Labels);
    }

    [Fact]
    public void A_missing_folder_is_named()
    {
        var missing = temp.File("nowhere");
        var error = Assert.Throws<InvalidInputException>(() => MnistData.Load(new DatasetSpec(missing)));
        AssertOneLine(error, missing, "dataset folder not found");
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        IdxWriter.Dataset(temp.Path, 20, 10);
        File.Delete(temp.File("t10k-labels-idx1-ubyte.gz"));

        var error = Assert.Throws<InvalidInputException>(() => MnistData.Load(new DatasetSpec(temp.Path)));
        AssertOneLine(error, "t10k-labels-idx1-ubyte", "file not found");
    }

    [Fact]
    public void A_wrong_magic_number_is_named()
    {
        var path = temp.File("bad");
        File.WriteAllBytes(path, IdxWriter.Images(2, 28, 28, magic: 0x00000802));

        var error = Assert.Throws<InvalidInputException>(() => IdxFile.ReadImages(path));
        AssertOneLine(error, path, "wrong magic number 0x00000802");
    }

    [Fact]
    public void Labels_read_as_images_are_refused_by_their_magic_number()
    {
        var path = temp.File("labels-as-images");
        File.WriteAllBytes(path, IdxWriter.Labels(1, 2, 3));

        var error = Assert.Throws<InvalidInputException>(() => IdxFile.ReadImages(path));
        AssertOneLine(error, path, "wrong magic number 0x00000801");
    }

    [Fact]
    public void A_truncated_file_is_named_with_what_is_missing()
    {
        var path = temp.File("truncated.gz");
        var images = IdxWriter.Images(10, 28, 28);
        File.WriteAllBytes(path, IdxWriter.Gzip(images[..(16 + 9 * 784 + 100)]));

        var error = Assert.Throws<InvalidInputException>(() => IdxFile.ReadImages(path));
        AssertOneLine(error, path, "truncated: the header promises 10 images of 28x28 (7840 bytes) but 7156 bytes follow");
    }

    [Fact]
    public void A_file_shorter_than_its_header_is_truncated()
    {
        var path = temp.File("stub");
        File.WriteAllBytes(path, IdxWriter.Images(1, 28, 28)[..10]);

        var error = Assert.Throws<InvalidInputException>(() => IdxFile.ReadImages(path));
        AssertOneLine(error, path, "truncated");
    }

    [Fact]
    public void A_label_count_that_does_not_match_the_images_is_named()
    {
        IdxWriter.Dataset(temp.Path, 20, 10);
        File.WriteAllBytes(temp.File("train-labels-idx1-ubyte.gz"), IdxWriter.Gzip(IdxWriter.Labels(new byte[19])));

        var error = Assert.Throws<InvalidInputException>(() => MnistData.Load(new DatasetSpec(temp.Path)));
        AssertOneLine(error, "train-labels-idx1-ubyte.gz", "19 labels for the 20 images");
    }

    [Fact]
    public void A_wrong_image_size_is_named()
    {
        IdxWriter.Dataset(temp.Path, 20, 10);
        File.WriteAllBytes(temp.File("t10k-images-idx3-ubyte.gz"), IdxWriter.Gzip(IdxWriter.Images(10, 32, 32)));

        var error = Assert.Throws<InvalidInputException>(() => MnistData.Load(new DatasetSpec(temp.Path)));
        AssertOneLine(error, "t10k-images-idx3-ubyte.gz", "images are 32x32, LeNet needs 28x28");
    }

    [Fact]
    public void A_label_that_is_not_a_digit_is_named()
    {
        IdxWriter.Dataset(temp.Path, 20, 10);
        File.WriteAllBytes(temp.File("t10k-labels-idx1-ubyte.gz"), IdxWriter.Gzip(IdxWriter.Labels(1, 2, 3, 4, 5, 6, 7, 8, 12, 0)));

        var error = Assert.Throws<InvalidInputException>(() => MnistData.Load(new DatasetSpec(temp.Path)));
        AssertOneLine(error, "t10k-labels-idx1-ubyte.gz", "label 12 at index 8 is not a digit");
    }

    [Fact]
    public void A_broken_gzip_stream_is_named()
    {
        var path = temp.File("broken.gz");
        var gz = IdxWriter.Gzip(IdxWriter.Images(5, 28, 28));
        gz[20] ^= 0xff;
        gz[21] ^= 0xff;
        File.WriteAllBytes(path, gz[..(gz.Length / 2)]);

        var error = Assert.Throws<InvalidInputException>(() => IdxFile.ReadImages(path));
        Assert.Contains(path, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Asking_for_more_images_than_the_file_holds_is_refused()
    {
        IdxWriter.Dataset(temp.Path, 20, 10);

        var error = Assert.Throws<InvalidInputException>(() => MnistData.Load(new DatasetSpec(temp.Path, TrainCount: 21)));
        AssertOneLine(error, "train-images-idx3-ubyte.gz", "train-count 21 is more than the 20 images it holds");
    }

    [Fact]
    public void The_original_uncompressed_download_names_are_found()
    {
        IdxWriter.Dataset(temp.Path, 20, 10, gzip: false);

        var data = MnistData.Load(new DatasetSpec(temp.Path));

        Assert.Equal((20, 10), (data.Train.Count, data.Test.Count));
    }

    private static void AssertOneLine(InvalidInputException error, string names, string says)
    {
        Assert.Contains(names, error.Message);
        Assert.Contains(says, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }
}
