namespace RlhfSharp;

/// <summary>
/// A problem the user can fix: bad input, a missing file, a mismatched checkpoint. The CLI prints the
/// message (which names the file, line or key) without a stack trace and exits non-zero.
/// </summary>
public class RlhfException(string message, Exception? inner = null) : Exception(message, inner);
