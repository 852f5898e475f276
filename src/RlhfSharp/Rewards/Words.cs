using System.Text.RegularExpressions;

namespace RlhfSharp.Rewards;

/// <summary>
/// The one word tokeniser every text reward here uses, so that "words" means the same thing in the lexicon
/// rewards, the length reward and the repetition measures.
/// </summary>
/// <remarks>
/// Rule: lower-case the text, turn typographic apostrophes (’ ‘) into <c>'</c>, and take maximal runs of letters
/// joined by inner apostrophes: <c>[letters]('[letters])*</c>. So <c>"Don't!"</c> → <c>don't</c>,
/// <c>"Lily's ball"</c> → <c>lily's</c>, <c>ball</c>; quotes around a word (<c>'hi'</c>) are dropped;
/// digits, punctuation and emoticons are not words (VADER's emoticon entries are therefore never matched).
/// Hyphenated words split in two (<c>well-known</c> → <c>well</c>, <c>known</c>).
/// </remarks>
public static partial class Words
{
    [GeneratedRegex(@"\p{L}+(?:'\p{L}+)*")]
    private static partial Regex WordPattern();

    /// <summary>The lower-cased words of <paramref name="text"/> in order.</summary>
    public static string[] Tokenize(string text)
    {
        if (string.IsNullOrEmpty(text)) return [];
        string normalised = text.ToLowerInvariant().Replace('\u2019', '\'').Replace('\u2018', '\'');
        var matches = WordPattern().Matches(normalised);
        var words = new string[matches.Count];
        for (int i = 0; i < words.Length; i++) words[i] = matches[i].Value;
        return words;
    }
}
