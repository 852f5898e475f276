namespace RlhfSharp.Tokenization;

/// <summary>
/// The LLaMA flavour of a Hugging Face <c>tokenizer.json</c> BPE: spaces become <c>▁</c>, a <c>▁</c> is prepended,
/// characters missing from the vocab fall back to <c>&lt;0xXX&gt;</c> byte pieces, and merges are applied by rank.
/// Written by hand because Microsoft.ML.Tokenizers' BpeTokenizer has no byte fallback.
/// </summary>
internal sealed class SentencePieceBpe : IBpeModel
{
    /// <summary>When to prepend <c>▁</c>: HF's Prepend normalizer and Metaspace "always" do it for every segment,
    /// Metaspace "first" only at the start of the text, "never" not at all.</summary>
    public enum PrependScheme { Always, First, Never }

    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _pieces;
    private readonly Dictionary<(string, string), int> _ranks;
    private readonly PrependScheme _prepend;
    private readonly bool _splitOnSpace;
    private readonly bool _byteFallback;
    private readonly int? _unkId;

    public SentencePieceBpe(IReadOnlyDictionary<string, int> vocab, IEnumerable<(string Left, string Right)> merges,
        PrependScheme prepend, bool splitOnSpace, bool byteFallback, int? unkId)
    {
        _vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        _pieces = new string[vocab.Values.Max() + 1];
        foreach (var (piece, id) in vocab) _pieces[id] = piece;
        _ranks = new Dictionary<(string, string), int>();
        foreach (var merge in merges) _ranks.TryAdd(merge, _ranks.Count);
        _prepend = prepend;
        _splitOnSpace = splitOnSpace;
        _byteFallback = byteFallback;
        _unkId = unkId;
    }

    public int[] Encode(string text, bool atTextStart)
    {
        if (text.Length == 0) return [];
        bool prepend = _prepend == PrependScheme.Always || (_prepend == PrependScheme.First && atTextStart);
        var normalized = (prepend ? "▁" : "") + text.Replace(' ', '▁');
        var ids = new List<int>();
        foreach (var word in _splitOnSpace ? SplitBeforeMetaspace(normalized) : [normalized]) EncodeWord(word, ids);
        return ids.ToArray();
    }

    public string Decode(IReadOnlyList<int> ids, bool afterBos) =>
        SentencePieceText.Decode(ids.Select(id => _pieces[id]), stripFirstSpace: afterBos && _prepend != PrependScheme.Never);

    public byte[] TokenBytes(int id) => SentencePieceText.Bytes(_pieces[id] ?? "");

    private void EncodeWord(string word, List<int> ids)
    {
        var symbols = new List<string>();
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in word.EnumerateRunes())
        {
            var ch = rune.ToString();
            if (_vocab.ContainsKey(ch)) { symbols.Add(ch); continue; }
            if (_byteFallback)
            {
                int n = rune.EncodeToUtf8(utf8);
                for (int k = 0; k < n; k++) symbols.Add($"<0x{utf8[k]:X2}>");
            }
            else symbols.Add(ch); // becomes unk below, as HF's BPE does without byte_fallback
        }

        while (symbols.Count > 1)
        {
            // Lowest rank wins; ties (the same pair twice) go to the leftmost, as in HF's priority queue.
            int bestRank = int.MaxValue, bestIndex = -1;
            for (int i = 0; i < symbols.Count - 1; i++)
            {
                if (_ranks.TryGetValue((symbols[i], symbols[i + 1]), out int rank) && rank < bestRank)
                {
                    bestRank = rank;
                    bestIndex = i;
                }
            }
            if (bestIndex < 0) break;
            symbols[bestIndex] += symbols[bestIndex + 1];
            symbols.RemoveAt(bestIndex + 1);
        }

        foreach (var symbol in symbols)
        {
            if (_vocab.TryGetValue(symbol, out int id)) ids.Add(id);
            else if (_unkId is int unk) ids.Add(unk);
            else throw new RlhfException($"tokenizer.json: '{symbol}' is not in model.vocab and there is no unk_token");
        }
    }

    private static IEnumerable<string> SplitBeforeMetaspace(string text)
    {
        int start = 0;
        for (int i = 1; i < text.Length; i++)
        {
            if (text[i] != '▁') continue;
            yield return text[start..i];
            start = i;
        }
        yield return text[start..];
    }
}
