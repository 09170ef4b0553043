namespace Sweep.Protocol;

/// <summary>
/// Bad input from a user (a spec, a flag, a data file): its message is one line that names the
/// file or key and what is wrong. The command line prints it as it is and exits with code 2.
/// </summary>
/// <param name="message">One line naming the file or key and the problem.</param>
/// <param name="inner">What was caught while reading the input, if anything.</param>
public class InvalidInputException(string message, Exception? inner = null) : Exception(message, inner);
