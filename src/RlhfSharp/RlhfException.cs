namespace RlhfSharp;

/// <summary>
/// An error the user can fix (a missing file, a bad name, an unsupported format). The message names the file
/// or key involved and what was expected, so the CLI can print it without a stack trace.
/// </summary>
public class RlhfException : Exception
{
    /// <summary>Creates the exception with a message that names the file or key and what was expected.</summary>
    public RlhfException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping the lower-level error that caused it.</summary>
    public RlhfException(string message, Exception inner) : base(message, inner) { }
}
