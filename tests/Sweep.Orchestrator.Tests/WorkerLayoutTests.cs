using Sweep.Orchestrator.Running;
using Sweep.Protocol;
using Sweep.Protocol.Specs;
using Xunit;

namespace Sweep.Orchestrator.Tests;

/// <summary>How a machine's cores are split into worker slots (no GPU on these machines).</summary>
public class WorkerLayoutTests
{
    private static readonly int Cores = Environment.ProcessorCount;

    [Fact]
    public void By_default_each_core_is_a_slot_with_one_thread_and_nothing_is_oversubscribed()
    {
        var layout = WorkerLayout.For(ModelKind.Lenet, workers: null, threads: null);

        Assert.Equal(new WorkerLayout(Cores, 1), layout);
        Assert.Null(layout.OversubscriptionWarning(ModelKind.Lenet));
    }

    [Fact]
    public void One_slot_gets_every_core_as_threads()
    {
        var layout = WorkerLayout.For(ModelKind.Lenet, workers: 1, threads: null);

        Assert.Equal(new WorkerLayout(1, Cores), layout);
        Assert.Null(layout.OversubscriptionWarning(ModelKind.Lenet));
    }

    [Fact]
    public void More_threads_than_cores_is_named_with_the_numbers()
    {
        var layout = WorkerLayout.For(ModelKind.Lenet, workers: Cores, threads: 2);

        var warning = layout.OversubscriptionWarning(ModelKind.Lenet);

        Assert.NotNull(warning);
        Assert.Contains($"{Cores} CPU slot(s) x 2 LibTorch thread(s) = {2 * Cores} threads on {Cores} core(s)", warning);
    }

    [Fact]
    public void Synthetic_trials_never_load_LibTorch_so_their_slots_are_not_oversubscribed()
    {
        var layout = WorkerLayout.For(ModelKind.Synthetic, workers: 4 * Cores, threads: 2);

        Assert.Null(layout.OversubscriptionWarning(ModelKind.Synthetic));
    }

    [Theory]
    [InlineData(-1, null, "--workers must be zero or positive, got -1")]
    [InlineData(1, 0, "--threads must be positive, got 0")]
    [InlineData(1, 99999, "--threads 99999 is more than 4 per core")]
    public void Bad_counts_are_refused(int? workers, int? threads, string message)
    {
        var error = Assert.Throws<InvalidInputException>(() => WorkerLayout.For(ModelKind.Lenet, workers, threads));

        Assert.StartsWith(message, error.Message);
    }
}
