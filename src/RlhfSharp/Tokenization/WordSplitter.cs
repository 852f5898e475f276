using System.Collections.Concurrent;

namespace RlhfSharp.Tokenization;

/// <summary>
/// Cuts SentencePiece-style text (spaces as <c>' '</c> or <c>▁</c>) into words at the start of every run of spaces,
/// as SentencePiece's <c>SplitIntoWords</c> does, and caches the encoding of repeated words, as HF tokenizers' BPE
/// cache does (10,000 entries, <c>tokenizers/src/models/bpe/model.rs</c>).
/// </summary>
/// <remarks>
/// Whole-text merging (run.c, HF's BPE without a pre-tokenizer) and per-word merging give the same ids exactly when
/// no merge can join a word's last character to the next word's space, that is when no vocabulary piece holds a
/// non-space character followed by a space. That is checked on the vocabulary; when it fails the text stays whole,
/// which the merge queue still encodes in O(n log n).
/// </remarks>
internal sealed class WordSplitter
{
    private const int CacheCapacity = 10_000;
    private const int LongestCachedWord = 256;

    private readonly char _space;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    /// <summary>Whether cutting at runs of spaces is exact for this vocabulary.</summary>
    public bool Splits { get; }

    public WordSplitter(IEnumerable<string?> pieces, char space)
    {
        _space = space;
        Splits = !pieces.Any(p => p is not null && HasSpaceAfterNonSpace(p));
    }

    private bool HasSpaceAfterNonSpace(string piece)
    {
        for (int i = 1; i < piece.Length; i++)
            if (piece[i] == _space && piece[i - 1] != _space) return true;
        return false;
    }

    /// <summary>The words of <paramref name="text"/> as (start, length); the whole text when <see cref="Splits"/> is false.</summary>
    public IEnumerable<(int Start, int Length)> Split(string text)
    {
        if (!Splits) { yield return (0, text.Length); yield break; }
        int start = 0;
        for (int i = 1; i < text.Length; i++)
        {
            if (text[i] != _space || text[i - 1] == _space) continue;
            yield return (start, i - start);
            start = i;
        }
        if (start < text.Length) yield return (start, text.Length - start);
    }

    /// <summary>Encodes one word through the cache. Long words are not cached: they rarely repeat.</summary>
    public int[] Encode(string word, Func<string, int[]> encode)
    {
        if (word.Length > LongestCachedWord) return encode(word);
        if (_cache.TryGetValue(word, out var ids)) return ids;
        ids = encode(word);
        // Like HF's cache, stop inserting once full rather than evicting: the common words are seen first.
        if (_cache.Count < CacheCapacity) _cache.TryAdd(word, ids);
        return ids;
    }
}
