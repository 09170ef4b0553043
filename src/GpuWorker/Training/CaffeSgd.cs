using TorchSharp;
using static TorchSharp.torch;

namespace Sweep.GpuWorker.Training;

/// <summary>
/// Caffe's SGD update, which differs from TorchSharp's SGD whenever the rate changes (as with the
/// inv policy): <c>diff += wd·w; history = local_rate·diff + momentum·history; w −= history</c>,
/// with <c>local_rate = rate × lr_mult</c>. TorchSharp's form, <c>buf = m·buf + g; w −= lr·buf</c>,
/// scales the accumulated history by today's rate instead.
/// </summary>
public sealed class CaffeSgd : IDisposable
{
    private readonly List<Slot> slots;
    private readonly double momentum;
    private readonly double weightDecay;

    private sealed record Slot(string Name, Tensor Parameter, double LearningRateMultiplier, Tensor History);

    public CaffeSgd(IEnumerable<(string Name, Tensor Parameter, double LearningRateMultiplier)> parameters, double momentum, double weightDecay)
    {
        this.momentum = momentum;
        this.weightDecay = weightDecay;
        slots = parameters.Select(p => new Slot(p.Name, p.Parameter, p.LearningRateMultiplier, zeros_like(p.Parameter).DetachFromDisposeScope())).ToList();
    }

    /// <summary>The momentum history of each parameter, by name: part of a checkpoint.</summary>
    public IEnumerable<(string Name, Tensor History)> Histories => slots.Select(s => (s.Name, s.History));

    public void ZeroGrad()
    {
        foreach (var slot in slots) slot.Parameter.grad?.zero_();
    }

    /// <summary>One update with the policy's <paramref name="rate"/> for this iteration.</summary>
    public void Step(double rate)
    {
        using var _ = no_grad();
        foreach (var slot in slots)
        {
            var diff = slot.Parameter.grad ?? throw new InvalidOperationException($"{slot.Name} has no gradient: call backward() before Step");
            if (weightDecay != 0) diff.add_(slot.Parameter, alpha: weightDecay);
            slot.History.mul_(momentum).add_(diff, alpha: rate * slot.LearningRateMultiplier);
            slot.Parameter.sub_(slot.History);
        }
    }

    public void Dispose()
    {
        foreach (var slot in slots) slot.History.Dispose();
    }
}
