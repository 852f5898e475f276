namespace RlhfSharp.Labeling;

/// <summary>
/// Size limits on everything a client sends. Every field has one so a client cannot fill the database or the
/// server's memory; requests over a limit are refused with 400 (413 for the body as a whole) and store nothing.
/// </summary>
public sealed record LabelLimits
{
    /// <summary>Largest request body in bytes (a 20,000-character demonstration in UTF-8 JSON fits with room to spare).</summary>
    public long MaxRequestBytes { get; init; } = 256 * 1024;
    /// <summary>Longest demonstration, in characters (InstructGPT's demonstrations were a few hundred words).</summary>
    public int MaxDemonstrationChars { get; init; } = 20_000;
    /// <summary>Longest idempotency key (a UUID is 36 characters).</summary>
    public int MaxIdempotencyKeyChars { get; init; } = 128;
    /// <summary>Most responses an item may hold (InstructGPT ranked K = 4..9).</summary>
    public int MaxResponses { get; init; } = 9;
    /// <summary>Longest prompt or response accepted on import, in characters.</summary>
    public int MaxImportedTextChars { get; init; } = 100_000;
    /// <summary>Longest annotator name.</summary>
    public int MaxNameChars { get; init; } = 64;
    /// <summary>Most flags on one rating.</summary>
    public int MaxFlags { get; init; } = 8;
}
