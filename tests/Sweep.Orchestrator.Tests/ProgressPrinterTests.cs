using Sweep.Orchestrator.Coordination;
using Sweep.Orchestrator.Running;
using Sweep.Protocol.Events;
using Sweep.Protocol.Messages;
using Sweep.Protocol.Specs;
using Sweep.Protocol.Training;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Tests;

/// <summary>The actor that shows a coordinator's events through a <see cref="ProgressView"/>, with a test probe as the coordinator.</summary>
public sealed class ProgressPrinterTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly DateTimeOffset At = DateTimeOffset.UtcNow;

    [Fact]
    public void Finish_view_is_answered_once_the_block_is_gone_and_later_events_are_plain_lines()
    {
        var state = SweepState.Start(new SweepStarted("s", new SweepDefinition(
            "view", "test", ModelKind.Synthetic,
            [new TrialDefinition("a", "alpha", new TrialSpec(32, 64, 0.01, 1000, 100, 1, new SolverSpec(), new DatasetSpec("x")))],
            new DivergencePolicy(), new RetryPolicy(), OutOfMemoryPolicy.Fail, -1, new SyntheticSpec()), At));
        var coordinator = CreateTestProbe();
        var text = new StringWriter();
        var output = TextWriter.Synchronized(text);
        var finished = new TaskCompletionSource<ISweepMessage>();
        var printer = Sys.ActorOf(ProgressPrinter.Props(coordinator, new Hosting.JournalSettings(Path.GetTempPath()), new Sweep.Orchestrator.Journal.SweepJournal.SweepRead(state, 1), output, finished));
        coordinator.ExpectMsg<SubscribeToSweep>();

        printer.Tell(ProgressPrinter.FinishView.Instance, TestActor);
        ExpectMsg(ProgressPrinter.ViewFinished.Instance);
        printer.Tell(new TrialRequeued("a", "sweep interrupted at iteration 40", null, false, At, At), TestActor);
        AwaitAssert(() =>
        {
            lock (output) Assert.EndsWith("alpha: re-queued: sweep interrupted at iteration 40" + Environment.NewLine, text.ToString());
        });
        Assert.False(finished.Task.IsCompleted);
    }
}
