using System.Text;
using System.Text.RegularExpressions;

namespace RlhfSharp.Tokenization;

/// <summary>One entry of a tokenizer.json's <c>added_tokens</c>, with HF's matching options.</summary>
/// <param name="Id">The token id.</param>
/// <param name="Content">The text the token stands for.</param>
/// <param name="Special">Special tokens are skipped when decoding with skip_special_tokens, and kept as plain text
/// by <see cref="ITokenizer.Encode"/> (HF's <c>split_special_tokens=True</c>).</param>
/// <param name="SingleWord">Matches only when not inside a word (no word character right before or after).</param>
/// <param name="LStrip">The match takes the whitespace on its left.</param>
/// <param name="RStrip">The match takes the whitespace on its right.</param>
/// <param name="Normalized">Matched in normalized text rather than in the raw input.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord = false, bool LStrip = false,
    bool RStrip = false, bool Normalized = false);

/// <summary>
/// Finds added tokens in text as HF tokenizers' <c>AddedVocabulary::extract_and_normalize</c> does
/// (<c>tokenizers/src/tokenizer/added_vocabulary.rs</c>): first the tokens with <c>normalized: false</c> in the raw
/// text, then the stretches between them are normalized and the tokens with <c>normalized: true</c> are found there.
/// Matching is leftmost-longest (aho-corasick's <c>LeftmostLongest</c>), and honours single_word, lstrip and rstrip.
/// </summary>
internal sealed class AddedVocabulary
{
    // added_vocabulary.rs tests single_word with the regexes ^\w and \w$: one word character next to the match.
    private static readonly Regex WordCharacter = new(@"^\w$", RegexOptions.Compiled);

    private readonly Trie _raw = new();
    private readonly Trie _normalized = new();
    private readonly Func<string, string>? _normalizer;

    public AddedVocabulary(IEnumerable<AddedToken> tokens, Func<string, string>? normalizer)
    {
        _normalizer = normalizer;
        foreach (var token in tokens.Where(t => t.Content.Length > 0))
        {
            if (token.Normalized && normalizer is not null) _normalized.Add(normalizer(token.Content), token);
            else _raw.Add(token.Content, token);
        }
    }

    /// <summary>A stretch of text: either an added token, or normalized text for the model (with its place in the input).</summary>
    public readonly record struct Piece(AddedToken? Token, string Text, bool AtTextStart);

    /// <summary>
    /// Cuts <paramref name="text"/> into added tokens and normalized stretches.
    /// </summary>
    /// <param name="text">The input.</param>
    /// <param name="matchSpecial">False: special tokens are not matched (HF's <c>split_special_tokens</c>).</param>
    /// <param name="plainSpans">Ranges of <paramref name="text"/> in which special tokens are not matched.</param>
    public List<Piece> Split(string text, bool matchSpecial, IReadOnlyList<(int Start, int Length)>? plainSpans = null)
    {
        var result = new List<Piece>();
        foreach (var (token, start, end) in FindMatches(text, _raw, matchSpecial, plainSpans, 0))
        {
            if (token is not null) { result.Add(new Piece(token, text[start..end], start == 0)); continue; }
            var normalized = _normalizer is null ? text[start..end] : _normalizer(text[start..end]);
            // Spans index the raw text; inside a normalized stretch they apply only when normalization kept its length.
            var spans = normalized.Length == end - start ? plainSpans : null;
            foreach (var (inner, s, e) in FindMatches(normalized, _normalized, matchSpecial, spans, start))
                result.Add(new Piece(inner, normalized[s..e], start == 0 && s == 0));
        }
        return result;
    }

    private static IEnumerable<(AddedToken? Token, int Start, int End)> FindMatches(string text, Trie trie, bool matchSpecial,
        IReadOnlyList<(int Start, int Length)>? plainSpans, int offset)
    {
        if (text.Length == 0) yield break;
        int startOffset = 0;
        for (int i = 0; i < text.Length;)
        {
            var (token, length) = trie.LongestAt(text, i);
            if (token is null) { i++; continue; }
            int start = i, stop = i + length;
            i = stop; // aho-corasick goes on after the match, whether it is kept or not
            if (token.Special && (!matchSpecial || Overlaps(plainSpans, offset + start, offset + stop))) continue;
            if (token.SingleWord)
            {
                bool spaceBefore = start == 0 || !IsWordCharacter(text, start - (char.IsLowSurrogate(text[start - 1]) && start >= 2 ? 2 : 1));
                bool spaceAfter = stop == text.Length || !IsWordCharacter(text, stop);
                if (!spaceBefore || !spaceAfter) continue;
            }
            if (token.LStrip)
            {
                int newStart = start;
                while (newStart > 0 && char.IsWhiteSpace(text[newStart - 1])) newStart--;
                start = Math.Max(newStart, startOffset); // spaces already taken by the previous match stay there
            }
            if (token.RStrip)
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (startOffset < start) yield return (null, startOffset, start);
            yield return (token, start, stop);
            startOffset = stop;
            i = Math.Max(i, stop);
        }
        if (startOffset < text.Length) yield return (null, startOffset, text.Length);
    }

    private static bool IsWordCharacter(string text, int index) =>
        WordCharacter.IsMatch(Rune.TryGetRuneAt(text, index, out var rune) ? rune.ToString() : text[index].ToString());

    private static bool Overlaps(IReadOnlyList<(int Start, int Length)>? spans, int start, int end)
    {
        if (spans is null) return false;
        foreach (var span in spans)
            if (start < span.Start + span.Length && span.Start < end) return true;
        return false;
    }

    /// <summary>A character trie of token contents, for leftmost-longest matching.</summary>
    private sealed class Trie
    {
        private readonly Dictionary<char, Trie> _children = [];
        private AddedToken? _token;

        public void Add(string content, AddedToken token)
        {
            var node = this;
            foreach (var c in content)
            {
                if (!node._children.TryGetValue(c, out var child)) node._children[c] = child = new Trie();
                node = child;
            }
            node._token ??= token;
        }

        public (AddedToken? Token, int Length) LongestAt(string text, int start)
        {
            var node = this;
            (AddedToken?, int) best = (null, 0);
            for (int j = start; j < text.Length && node._children.TryGetValue(text[j], out node); j++)
                if (node._token is not null) best = (node._token, j - start + 1);
            return best;
        }
    }
}
