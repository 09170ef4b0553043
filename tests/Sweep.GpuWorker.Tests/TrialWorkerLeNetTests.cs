using Akka.Actor;
using Akka.TestKit;
using Sweep.GpuWorker.Data;
using Sweep.GpuWorker.Training;
using Sweep.GpuWorker.Workers;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;

namespace Sweep.GpuWorker.Tests;

/// <summary>The worker actor running real LeNet trials (TorchSharp, the embedded MNIST) from its checkpoint files.</summary>
[Collection(TorchCollection.Name)]
public sealed class TrialWorkerLeNetTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(2);
    private readonly TempDirectory temp = new();
    private readonly TestProbe coordinator;
    private readonly IActorRef worker;

    public TrialWorkerLeNetTests()
    {
        coordinator = CreateTestProbe();
        worker = Sys.ActorOf(TrialWorker.Props(new WorkerSlot("w1", "node", "cpu", TorchCollection.Threads), coordinator.Ref));
        coordinator.ExpectMsg<RegisterWorker>(Wait);
        coordinator.Reply(new WorkerRegistered("sweep"));
    }

    void IDisposable.Dispose()
    {
        temp.Dispose();
        Dispose();
    }

    /// <summary>A short real trial: 40 iterations of batch 64, tested on 500 images at 0, 20 and 40; one checkpoint, at 20.</summary>
    private RunTrial Run(int attempt = 1, string? resumeFrom = null) =>
        new("sweep", new TrialDefinition("id-lenet", "lenet", new TrialSpec(64, 128, 0.01, 40, 20, 1, new SolverSpec(), new DatasetSpec(MnistData.EmbeddedPath, 2000, 500))),
            attempt, ModelKind.Lenet, new SyntheticSpec(), new DivergencePolicy(), temp.File("id-lenet.ckpt"), resumeFrom);

    /// <summary>What a run computed, without its wall-clock time and memory.</summary>
    private static IEnumerable<(int, double, double, double, double, double)> Computed(IEnumerable<TrialMetrics> metrics) =>
        metrics.Select(m => (m.Iteration, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.LearningRate));

    [Fact]
    public void A_truncated_lenet_checkpoint_restarts_the_attempt_from_scratch_once_and_its_metrics_are_the_uninterrupted_runs()
    {
        var (uninterrupted, saved, _) = TrialWorkerTesting.RunToEnd(worker, coordinator, Run(), Wait);
        var journalled = Assert.Single(saved).Path;
        Assert.Equal(temp.File("id-lenet.it000000020.ckpt"), journalled);
        var bytes = File.ReadAllBytes(journalled);
        File.WriteAllBytes(journalled, bytes[..(bytes.Length * 2 / 3)]); // an interrupted copy

        var (again, savedAgain, missing) = TrialWorkerTesting.RunToEnd(worker, coordinator, Run(attempt: 2, resumeFrom: journalled), Wait);

        var report = Assert.Single(missing);
        Assert.Equal((2, journalled), (report.Attempt, report.Path));
        Assert.StartsWith("damaged checkpoint (", report.Reason);
        Assert.Equal(new[] { 0, 20, 40 }, again.Select(m => m.Iteration));
        Assert.Equal(Computed(uninterrupted), Computed(again));
        Assert.Equal(journalled, Assert.Single(savedAgain).Path);

        // The restarted attempt wrote the checkpoint at 20 whole again: a later attempt resumes from it exactly.
        var (resumed, _, none) = TrialWorkerTesting.RunToEnd(worker, coordinator, Run(attempt: 3, resumeFrom: journalled), Wait);
        Assert.Empty(none);
        Assert.Equal(Computed(uninterrupted.Where(m => m.Iteration > 20)), Computed(resumed));
    }
}
