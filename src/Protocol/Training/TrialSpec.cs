namespace Sweep.Protocol.Training;

/// <summary>How the learning rate falls with the iteration, as Caffe's solver defines its policies.</summary>
public enum LearningRatePolicy
{
    /// <summary><c>base_lr × (1 + γ·iter)^(−power)</c>: the paper's policy.</summary>
    Inv,
    /// <summary><c>base_lr</c> throughout.</summary>
    Fixed,
    /// <summary><c>base_lr × γ^floor(iter / step-size)</c>.</summary>
    Step,
}

/// <summary>Caffe's SGD solver settings; the defaults are the paper's (γ = 0.001, power = 0.75).</summary>
public sealed record SolverSpec(
    double Momentum = 0.9,
    double WeightDecay = 0.0005,
    LearningRatePolicy Policy = LearningRatePolicy.Inv,
    double Gamma = 0.001,
    double Power = 0.75,
    int StepSize = 1000)
{
    /// <summary>The rate used by the update at <paramref name="iteration"/> (counted from 0, as in Caffe).</summary>
    public double LearningRateAt(double baseLr, int iteration) => Policy switch
    {
        LearningRatePolicy.Inv => baseLr * Math.Pow(1.0 + Gamma * iteration, -Power),
        LearningRatePolicy.Fixed => baseLr,
        LearningRatePolicy.Step => baseLr * Math.Pow(Gamma, iteration / StepSize),
        _ => throw new ArgumentOutOfRangeException(nameof(Policy), Policy, null),
    };
}

/// <summary>Where a trial's data comes from: a folder with the four standard MNIST IDX files.</summary>
/// <param name="Path">The folder; the files may be gzipped.</param>
/// <param name="TrainCount">Use only the first N training images (null: all).</param>
/// <param name="TestCount">Use only the first N test images (null: all).</param>
public sealed record DatasetSpec(string Path, int? TrainCount = null, int? TestCount = null);

/// <summary>Everything that decides what one trial computes: the same spec and seed give the same metrics.</summary>
/// <param name="Parameters">
/// The trial's other named parameters (a command's or a plug-in's own, e.g. <c>dropout</c>); null
/// when it has none, as every trial journaled before they existed (the field is then not written,
/// so such a trial's events and id are what they were).
/// </param>
public sealed record TrialSpec(
    int BatchSize,
    int TestBatchSize,
    double BaseLr,
    int MaxIter,
    int TestInterval,
    int Seed,
    SolverSpec Solver,
    DatasetSpec Dataset,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    TrialParameters? Parameters = null)
{
    /// <summary>The paper's CASE1 (batch 64, test batch 128, lr 0.01, 1,000 iterations, test every 100) on <paramref name="dataset"/>.</summary>
    public static TrialSpec PaperCase1(DatasetSpec dataset) =>
        new(BatchSize: 64, TestBatchSize: 128, BaseLr: 0.01, MaxIter: 1000, TestInterval: 100, Seed: 1, new SolverSpec(), dataset);

    /// <summary>The problems with this spec, each naming its field (<see cref="TrialFields"/>); empty when it can run.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        void Check(TrialField field, double value)
        {
            if (field.Problem(value) is { } problem) problems.Add(problem);
        }
        Check(TrialFields.BatchSize, BatchSize);
        Check(TrialFields.TestBatchSize, TestBatchSize);
        Check(TrialFields.BaseLr, BaseLr);
        Check(TrialFields.MaxIter, MaxIter);
        Check(TrialFields.TestInterval, TestInterval);
        Check(TrialFields.Seed, Seed);
        Check(TrialFields.Momentum, Solver.Momentum);
        Check(TrialFields.WeightDecay, Solver.WeightDecay);
        Check(TrialFields.Gamma, Solver.Gamma);
        Check(TrialFields.Power, Solver.Power);
        if (Solver.Policy == LearningRatePolicy.Step) Check(TrialFields.StepSize, Solver.StepSize);
        if (Dataset.TrainCount is { } train) Check(TrialFields.TrainCount, train);
        if (Dataset.TestCount is { } test) Check(TrialFields.TestCount, test);
        return problems;
    }
}
