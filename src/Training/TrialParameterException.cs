namespace Sweep.Training;

/// <summary>A named parameter a model asked for is missing or of another type: the attempt fails with this message, which names it.</summary>
/// <param name="name">The parameter's name.</param>
/// <param name="message">What is wrong, naming the parameter.</param>
public sealed class TrialParameterException(string name, string message) : Exception(message)
{
    /// <summary>The parameter's name.</summary>
    public string Name { get; } = name;
}

/// <summary>
/// A model could not read the checkpoint it was told to resume from (truncated, damaged, written by
/// another run): the sweep treats it like a missing one, once, and runs the same attempt from
/// scratch at once (the journal records why).
/// </summary>
/// <param name="cause">What is wrong with the file.</param>
public sealed class CheckpointUnreadableException(string cause) : Exception(cause)
{
    /// <summary>What is wrong with the file.</summary>
    public string Cause { get; } = cause;
}
