namespace RlhfSharp.Tokenization;

/// <summary>
/// Cuts text at special-token strings so the parts between them can be encoded as plain text. At each position
/// the longest special that matches wins, so <c>&lt;|im_start|&gt;</c> is never read as a shorter special it contains.
/// </summary>
internal sealed class SpecialTokenSplitter(IReadOnlyDictionary<string, int> specials)
{
    private readonly (string Text, int Id)[] _byLength =
        specials.Where(kv => kv.Key.Length > 0).OrderByDescending(kv => kv.Key.Length).Select(kv => (kv.Key, kv.Value)).ToArray();

    /// <summary>Encodes <paramref name="text"/>, emitting special ids for special strings and <paramref name="encodePlain"/> for the rest.</summary>
    /// <param name="text">Text that may contain special-token strings.</param>
    /// <param name="encodePlain">Encodes a stretch of text that contains no specials.</param>
    /// <param name="plainSpans">Character ranges (message contents) where special strings are left as plain text.</param>
    public List<int> Encode(string text, Func<string, int[]> encodePlain, IReadOnlyList<(int Start, int Length)>? plainSpans = null)
    {
        var ids = new List<int>();
        int plainStart = 0, i = 0;
        while (i < text.Length)
        {
            if (plainSpans?.FirstOrDefault(span => i >= span.Start && i < span.Start + span.Length) is { Length: > 0 } inside)
            {
                i = inside.Start + inside.Length;
                continue;
            }
            var match = _byLength.FirstOrDefault(s => string.CompareOrdinal(text, i, s.Text, 0, s.Text.Length) == 0);
            if (match.Text is null) { i++; continue; }
            if (i > plainStart) ids.AddRange(encodePlain(text[plainStart..i]));
            ids.Add(match.Id);
            i += match.Text.Length;
            plainStart = i;
        }
        if (plainStart < text.Length) ids.AddRange(encodePlain(text[plainStart..]));
        return ids;
    }
}
