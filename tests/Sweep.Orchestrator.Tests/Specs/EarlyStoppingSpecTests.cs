using Sweep.Orchestrator.Specs;
using Sweep.Protocol;
using Sweep.Protocol.Specs;

namespace Sweep.Orchestrator.Tests.Specs;

/// <summary><c>early-stopping { … }</c> in a spec: what is read, its defaults, and every mistake in one line.</summary>
public sealed class EarlyStoppingSpecTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("sweep-stopping-spec-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private SweepDefinition Load(string block, params string[] overrides)
    {
        var path = Path.Combine(folder, "spec.conf");
        File.WriteAllText(path, $"sweep {{\n  name = s\n  model = synthetic\n  test-interval = 50\n  grid {{ batch-size = [32], base-lr = [0.01] }}\n  {block}\n}}\n");
        return SweepSpecLoader.Load(path, overrides, TextWriter.Null);
    }

    private string Refused(string block, params string[] overrides) =>
        Assert.Throws<InvalidInputException>(() => Load(block, overrides)).Message.Replace(Path.Combine(folder, "spec.conf"), "spec.conf");

    [Fact]
    public void Off_by_default_and_each_policy_reads_its_keys_with_the_test_interval_as_grace_period()
    {
        Assert.Null(Load("").EarlyStopping);
        Assert.Equal(new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, StoppingMetric.TestAccuracy, GracePeriod: 50), Load("early-stopping { policy = asha }").EarlyStopping);
        Assert.Equal(new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, StoppingMetric.TestLoss, 200, ReductionFactor: 4),
            Load("early-stopping { policy = asha, metric = test-loss, grace-period = 200, reduction-factor = 4 }").EarlyStopping);
        Assert.Equal(new EarlyStoppingSpec(EarlyStoppingPolicy.Median, GracePeriod: 100, MinTrials: 5), Load("early-stopping { policy = median, grace-period = 100, min-trials = 5 }").EarlyStopping);
        Assert.Equal(new EarlyStoppingSpec(EarlyStoppingPolicy.Plateau, GracePeriod: 50, Patience: 2, MinDelta: 0.001), Load("early-stopping { policy = plateau, patience = 2, min-delta = 0.001 }").EarlyStopping);
        Assert.Equal(EarlyStoppingPolicy.Median, Load("early-stopping { policy = asha }", "sweep.early-stopping.policy=median").EarlyStopping!.Policy);
        // In images, the grace period defaults to the test interval × the smallest batch size (50 × 32).
        Assert.Equal(new EarlyStoppingSpec(EarlyStoppingPolicy.Asha, GracePeriod: 1600, Resource: StoppingResource.Images), Load("early-stopping { policy = asha, resource = images }").EarlyStopping);
        Assert.Equal(new EarlyStoppingSpec(EarlyStoppingPolicy.Median, GracePeriod: 6400, Resource: StoppingResource.Images), Load("early-stopping { policy = median, resource = images, grace-period = 6400 }").EarlyStopping);
        Assert.Equal(StoppingResource.Iterations, Load("early-stopping { policy = asha, resource = iterations }").EarlyStopping!.Resource);
    }

    [Theory]
    [InlineData("early-stopping { }", "spec.conf: sweep.early-stopping.policy: missing (asha, median or plateau)")]
    [InlineData("early-stopping { policy = hyperband }", "spec.conf: sweep.early-stopping.policy: expected one of asha, median, plateau, got \"hyperband\"")]
    [InlineData("early-stopping { policy = asha, metric = accuracy }", "spec.conf: sweep.early-stopping.metric: expected one of test-accuracy, test-loss, got \"accuracy\"")]
    [InlineData("early-stopping { policy = asha, resource = epochs }", "spec.conf: sweep.early-stopping.resource: expected one of iterations, images, got \"epochs\"")]
    [InlineData("early-stopping { policy = asha, reduction-factor = 1 }", "spec.conf: sweep.early-stopping.reduction-factor: must be greater than 1, got 1")]
    [InlineData("early-stopping { policy = asha, grace-period = 0 }", "spec.conf: sweep.early-stopping.grace-period: must be positive, got 0")]
    [InlineData("early-stopping { policy = median, min-trials = 0 }", "spec.conf: sweep.early-stopping.min-trials: must be at least 1, got 0")]
    [InlineData("early-stopping { policy = plateau, min-delta = -0.1 }", "spec.conf: sweep.early-stopping.min-delta: must be zero or positive, got -0.1")]
    [InlineData("early-stopping { policy = asha, patience = 3 }", "spec.conf: sweep.early-stopping.patience: is not a key of policy = asha (it belongs to plateau)")]
    [InlineData("early-stopping { policy = plateau, min-trials = 3 }", "spec.conf: sweep.early-stopping.min-trials: is not a key of policy = plateau (it belongs to median)")]
    [InlineData("early-stopping { policy = asha, grace-periods = 100 }", "spec.conf: sweep.early-stopping.grace-periods: unknown key (did you mean grace-period?)")]
    public void A_bad_early_stopping_key_is_one_line_naming_it(string block, string message)
    {
        Assert.Equal(message, Refused(block));
    }
}
