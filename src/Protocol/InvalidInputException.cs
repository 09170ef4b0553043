namespace Sweep.Protocol;

/// <summary>
/// Bad input from a user (a spec, a flag, a data file): its message is one line that names the
/// file or key and what is wrong. The command line prints it as it is and exits with code 2.
/// </summary>
public sealed class InvalidInputException(string message) : Exception(message);
