namespace Sweep.Orchestrator.Tests;

/// <summary>
/// Tests that start `sweep` processes (whole sweeps, clusters, PostgreSQL) run one after another:
/// on two cores, side by side they would starve each other's heartbeats and turn timing into flakes.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessCollection : ICollectionFixture<Cluster.PostgresServer>
{
    public const string Name = "Processes";
}
