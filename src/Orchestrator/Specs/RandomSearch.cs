using System.Globalization;
using Sweep.Protocol;
using Sweep.Protocol.Training;

namespace Sweep.Orchestrator.Specs;

/// <summary>
/// A distribution one value of a random search is drawn from (<c>choice</c>, <c>uniform</c>,
/// <c>log-uniform</c>, <c>int-uniform</c>, <c>int-log-uniform</c>). Drawn reals are rounded to four
/// significant digits, so that names read well and the same draw always gives the same trial id.
/// </summary>
internal abstract record Distribution
{
    /// <summary>One value, drawn with <paramref name="random"/>.</summary>
    public abstract ParameterValue Draw(SplitMix64 random);

    /// <summary>The values' type, for the sweep's parameter schema: one value per kind it can give, with where it was written.</summary>
    public abstract IEnumerable<ParameterValue> Kinds { get; }

    /// <summary>One of the listed values, each equally likely.</summary>
    public sealed record Choice(IReadOnlyList<ParameterValue> Values) : Distribution
    {
        public override ParameterValue Draw(SplitMix64 random) => Values[random.NextInt(Values.Count)];

        public override IEnumerable<ParameterValue> Kinds => Values;
    }

    /// <summary>A real in [Low, High): uniform, or with <paramref name="Log"/> uniform in its logarithm.</summary>
    public sealed record Real(double Low, double High, bool Log) : Distribution
    {
        public override ParameterValue Draw(SplitMix64 random)
        {
            double u = random.NextDouble();
            double value = Log ? Math.Exp(Math.Log(Low) + u * (Math.Log(High) - Math.Log(Low))) : Low + u * (High - Low);
            return ParameterValue.Real(Round(value));
        }

        public override IEnumerable<ParameterValue> Kinds => [ParameterValue.Real(Low)];

        /// <summary>Four significant digits (0.012345 → 0.01235), in the invariant culture's round trip.</summary>
        public static double Round(double value) =>
            value == 0 ? 0 : double.Parse(value.ToString("G4", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>A whole number in [Low, High], both included: uniform, or with <paramref name="Log"/> uniform in its logarithm.</summary>
    public sealed record Integer(long Low, long High, bool Log) : Distribution
    {
        public override ParameterValue Draw(SplitMix64 random)
        {
            if (!Log) return ParameterValue.Integer(Low + random.NextLong(High - Low + 1));
            double value = Math.Exp(Math.Log(Low) + random.NextDouble() * (Math.Log(High + 1) - Math.Log(Low)));
            return ParameterValue.Integer(Math.Clamp((long)Math.Floor(value), Low, High));
        }

        public override IEnumerable<ParameterValue> Kinds => [ParameterValue.Integer(Low)];
    }
}

/// <summary>
/// SplitMix64 (Steele, Lea and Flood, "Fast Splittable Pseudorandom Number Generators", OOPSLA
/// 2014): ten lines whose sequence for a seed never changes, unlike <see cref="Random"/>'s, which
/// .NET does not promise across versions. Random search needs the same trials from the same spec forever.
/// </summary>
public sealed class SplitMix64(ulong seed)
{
    private ulong state = seed;

    /// <summary>The next 64 random bits.</summary>
    public ulong Next()
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A double in [0, 1) from the top 53 bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A whole number in [0, <paramref name="count"/>), without modulo bias (rejection).</summary>
    public long NextLong(long count)
    {
        ulong n = (ulong)count;
        ulong limit = ulong.MaxValue - ulong.MaxValue % n;
        ulong bits;
        do bits = Next(); while (bits >= limit);
        return (long)(bits % n);
    }

    /// <summary>A whole number in [0, <paramref name="count"/>).</summary>
    public int NextInt(int count) => (int)NextLong(count);
}

/// <summary>
/// <c>random { samples, seed, batch-size { … }, base-lr { … } | lr-scaling { … }, NAME { … } }</c>:
/// <see cref="Samples"/> trials, each parameter drawn from its distribution in name order, sample
/// after sample, from <see cref="Seed"/>; with <c>lr-scaling</c> the drawn exponent k gives the
/// rate through the sweep's coupling, from the drawn batch size.
/// </summary>
internal sealed record RandomSearchSpec(
    string Path,
    int Samples,
    ulong Seed,
    Distribution BatchSize,
    Distribution Rate,
    LrCoupling? Coupling,
    IReadOnlyList<(string Name, Distribution Distribution, SpecValue Where)> Parameters)
{
    /// <summary>
    /// The drawn trials, named <c>rK-bBATCH-lrRATE</c> (or <c>-kEXPONENT</c>), K from 1. A batch size
    /// or rate the trial fields refuse is refused when the trials are validated, naming the sample.
    /// </summary>
    public IEnumerable<TrialCandidate> Draws(TrialDefaults defaults, ParameterSchema schema, int seed, int maxIter)
    {
        var random = new SplitMix64(Seed);
        int width = Samples.ToString(CultureInfo.InvariantCulture).Length;
        for (int k = 1; k <= Samples; k++)
        {
            // Name order: batch-size, then the rate, then the named parameters (sorted), so adding a parameter does not change the others' draws' order among themselves.
            var batch = BatchSize.Draw(random);
            var rate = Rate.Draw(random);
            var given = Parameters.ToDictionary(p => p.Name, p => p.Distribution.Draw(random), StringComparer.Ordinal);
            long batchSize = batch.AsInteger();
            int batchValue = batchSize is > 0 and <= int.MaxValue ? (int)batchSize : throw new InvalidInputException($"{Path}: sample {k}: batch-size {batchSize} is out of range");
            double drawnRate = rate.AsReal();
            double baseLr = Coupling?.Rate(batchValue, drawnRate) ?? drawnRate;
            string name = $"r{k.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0')}-b{batchValue}-{(Coupling is null ? "lr" : "k")}{GridExpander.Short(drawnRate)}";
            var parameters = schema.Complete(given, missing => new InvalidInputException($"{Path}: has no {missing} (give it a distribution, or a default in sweep.parameters)"));
            yield return new TrialCandidate(name, defaults.Spec(batchValue, null, baseLr, maxIter, seed, parameters), Path);
        }
    }

    /// <summary>What the parameter schema needs to know of the named parameters: the kinds each distribution can give.</summary>
    public IEnumerable<GivenParameter> GivenKinds =>
        Parameters.SelectMany(p => p.Distribution.Kinds.Select(kind => new GivenParameter(p.Name, kind, p.Where)));
}
