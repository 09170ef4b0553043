namespace Sweep.Protocol.Training;

/// <summary>
/// A condition on a number, with the words that explain it when it fails ("must be positive").
/// The one kind of check behind every numeric key of a spec, every <c>sweep train</c> flag and
/// <see cref="TrialSpec.Problems"/>.
/// </summary>
/// <param name="Holds">True when the value is acceptable (NaN never is, except for <see cref="Finite"/>'s callers who test it).</param>
/// <param name="Requirement">What the value must be, as it follows a key's name: "must be positive".</param>
public sealed record Rule(Func<double, bool> Holds, string Requirement)
{
    /// <summary>Any finite number.</summary>
    public static readonly Rule Finite = new(double.IsFinite, "must be a finite number");

    /// <summary>Greater than 0 and finite.</summary>
    public static readonly Rule Positive = new(v => v > 0 && double.IsFinite(v), "must be positive");

    /// <summary>0 or more, finite.</summary>
    public static readonly Rule NonNegative = new(v => v >= 0 && double.IsFinite(v), "must be zero or positive");

    /// <summary>1 or more.</summary>
    public static readonly Rule AtLeastOne = new(v => v >= 1, "must be at least 1");

    /// <summary>In [0, 1).</summary>
    public static readonly Rule Fraction = new(v => v >= 0 && v < 1, "must be in [0, 1)");

    /// <summary>In (0, 1).</summary>
    public static readonly Rule OpenFraction = new(v => v > 0 && v < 1, "must be in (0, 1)");

    /// <summary>Greater than 1 and finite.</summary>
    public static readonly Rule AboveOne = new(v => v > 1 && double.IsFinite(v), "must be greater than 1");
}

/// <summary>One field of a <see cref="TrialSpec"/>: its key (in a spec, and as a <c>sweep train</c> flag without the dashes) and its rule.</summary>
public sealed record TrialField(string Key, Rule Rule)
{
    /// <summary>"KEY must be …, got VALUE" when <paramref name="value"/> breaks the rule; null when it holds.</summary>
    public string? Problem(double value) => Rule.Holds(value) ? null : $"{Key} {Rule.Requirement}, got {value}";
}

/// <summary>
/// The fields of a trial and what each must be: the one place a trial is validated. The spec
/// loader checks each key with these where it can name the line; <see cref="TrialSpec.Problems"/>
/// checks an assembled spec (a coupled rate, a <c>sweep train</c> command line, a spec sent to a worker).
/// </summary>
public static class TrialFields
{
    /// <summary>Training mini-batch size (images per iteration).</summary>
    public static readonly TrialField BatchSize = new("batch-size", Rule.Positive);

    /// <summary>Test mini-batch size (images per forward pass at a test point).</summary>
    public static readonly TrialField TestBatchSize = new("test-batch-size", Rule.Positive);

    /// <summary>Caffe's base_lr.</summary>
    public static readonly TrialField BaseLr = new("base-lr", Rule.Positive);

    /// <summary>Iterations to train.</summary>
    public static readonly TrialField MaxIter = new("max-iter", Rule.Positive);

    /// <summary>Iterations between test points.</summary>
    public static readonly TrialField TestInterval = new("test-interval", Rule.Positive);

    /// <summary>Seed of the weights' initialisation and the data order.</summary>
    public static readonly TrialField Seed = new("seed", Rule.NonNegative);

    /// <summary>SGD momentum.</summary>
    public static readonly TrialField Momentum = new("momentum", Rule.Fraction);

    /// <summary>L2 weight decay.</summary>
    public static readonly TrialField WeightDecay = new("weight-decay", Rule.NonNegative);

    /// <summary>γ of the inv and step policies.</summary>
    public static readonly TrialField Gamma = new("gamma", Rule.NonNegative);

    /// <summary>Power of the inv policy.</summary>
    public static readonly TrialField Power = new("power", Rule.NonNegative);

    /// <summary>Iterations per step of the step policy.</summary>
    public static readonly TrialField StepSize = new("step-size", Rule.Positive);

    /// <summary>How many training images to use.</summary>
    public static readonly TrialField TrainCount = new("train-count", Rule.Positive);

    /// <summary>How many test images to use.</summary>
    public static readonly TrialField TestCount = new("test-count", Rule.Positive);
}
