using RlhfSharp.Tokenization;

namespace RlhfSharp.Generation;

/// <summary>
/// Whether a row's text now contains one of the stop strings, looking only at what is new: the text the step's token adds
/// (<see cref="IncrementalDecoder"/>) after the last max(stop length) − 1 characters of the old text, the only ones a
/// stop string ending in the new text can start in (vLLM's <c>StopChecker</c>). Linear in the row's length, where decoding
/// the whole row at every step was quadratic.
/// </summary>
/// <remarks>
/// A match needs complete characters: a stop string that ends in U+FFFD (an incomplete UTF-8 character) is not seen
/// until the character completes.
/// </remarks>
public sealed class StopStringCheck
{
    readonly string[] stops;
    readonly int keep;
    readonly IncrementalDecoder[] decoders;
    readonly string[] tails;

    public StopStringCheck(ITokenizer tokenizer, IReadOnlyList<string> stopStrings, int rows)
    {
        stops = stopStrings.Where(s => s.Length > 0).ToArray();
        keep = stops.Length == 0 ? 0 : stops.Max(s => s.Length) - 1;
        decoders = Enumerable.Range(0, rows).Select(_ => new IncrementalDecoder(tokenizer)).ToArray();
        tails = Enumerable.Repeat("", rows).ToArray();
    }

    /// <summary>Call after each token appended to row <paramref name="row"/>'s <paramref name="tokens"/>.</summary>
    public bool Hits(int row, List<int> tokens)
    {
        string piece = decoders[row].Next(tokens);
        if (piece.Length == 0) return false;
        string window = tails[row] + piece;
        tails[row] = window.Length > keep ? window[(window.Length - keep)..] : window;
        return stops.Any(s => window.Contains(s, StringComparison.Ordinal));
    }
}
