using RlhfSharp.Tokenization;

namespace RlhfSharp.Data;

/// <summary>
/// Encodes a text and finds the token index of given character positions (where a completion or an assistant turn
/// starts and ends), so a loss mask can be set per token.
/// </summary>
/// <remarks>
/// First choice, the whole text encoded at once, as the tokenizer would at inference: a boundary b is exact when the
/// encoding of text[..b] is a prefix of the whole encoding (the test TRL makes between the prompt and
/// prompt+completion). If a merge crosses any boundary, the text is encoded in segments cut at the boundaries and
/// concatenated, so each token belongs to one segment. The prompt tokens are then still what generation sees, but a
/// SentencePiece tokenizer adds its dummy-prefix space to each later segment: rare, and the price of an exact mask.
/// </remarks>
internal static class TokenAlignment
{
    /// <summary>The ids of <paramref name="text"/> and, per boundary (ascending character positions), the index of the first token at or after it.</summary>
    public static (int[] Ids, int[] TokenBoundaries) Encode(ITokenizer tokenizer, string text, bool addBos, bool specialTokens,
        IReadOnlyList<(int Start, int Length)>? plainSpans, IReadOnlyList<int> boundaries)
    {
        int[] Enc(int from, int to, bool bos) => specialTokens
            ? tokenizer.EncodeWithSpecialTokens(text[from..to], bos, Clip(plainSpans, from, to))
            : tokenizer.Encode(text[from..to], bos);

        var full = Enc(0, text.Length, addBos);
        var tokenBoundaries = new int[boundaries.Count];
        bool exact = true;
        int previous = 0;
        for (int i = 0; i < boundaries.Count && exact; i++)
        {
            var head = Enc(0, boundaries[i], addBos);
            exact = head.Length >= previous && full.AsSpan().StartsWith(head);
            tokenBoundaries[i] = previous = head.Length;
        }
        if (exact) return (full, tokenBoundaries);

        var ids = new List<int>();
        int start = 0;
        for (int i = 0; i <= boundaries.Count; i++)
        {
            int end = i < boundaries.Count ? boundaries[i] : text.Length;
            ids.AddRange(Enc(start, end, addBos && start == 0));
            if (i < boundaries.Count) tokenBoundaries[i] = ids.Count;
            start = end;
        }
        return (ids.ToArray(), tokenBoundaries);
    }

    private static List<(int Start, int Length)>? Clip(IReadOnlyList<(int Start, int Length)>? spans, int from, int to)
    {
        if (spans is null) return null;
        var clipped = new List<(int, int)>();
        foreach (var (s, l) in spans)
        {
            int a = Math.Max(s, from), b = Math.Min(s + l, to);
            if (b > a) clipped.Add((a - from, b - a));
        }
        return clipped;
    }
}
