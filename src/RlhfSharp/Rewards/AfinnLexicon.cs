using System.Globalization;

namespace RlhfSharp.Rewards;

/// <summary>
/// The AFINN-165 word list (Nielsen 2011): 3,382 English terms scored −5 … +5, some of them phrases
/// (<c>can't stand</c>). Text is split with <see cref="Words.Tokenize"/>; phrases match as word sequences, longest first.
/// </summary>
public sealed class AfinnLexicon
{
    readonly Dictionary<string, int> scores;
    readonly int longestPhrase;

    AfinnLexicon(Dictionary<string, int> scores, int entries)
    {
        this.scores = scores;
        Entries = entries;
        longestPhrase = scores.Keys.Max(k => k.Count(c => c == ' ') + 1);
    }

    /// <summary>Lines read (3,382 for the shipped file).</summary>
    public int Entries { get; }

    /// <summary>
    /// Terms that can match (3,380 for the shipped file): terms with digits (<c>gr8</c>, <c>n00b</c>) are skipped because
    /// <see cref="Words.Tokenize"/> never yields them.
    /// </summary>
    public int Count => scores.Count;

    /// <summary>The shipped list: <c>data/afinn/AFINN-en-165.txt</c> next to the application.</summary>
    public static string DefaultPath => Path.Combine(AppContext.BaseDirectory, "data", "afinn", "AFINN-en-165.txt");

    static readonly Lazy<AfinnLexicon> shipped = new(() => Load(DefaultPath));

    /// <summary>The shipped list, loaded once.</summary>
    public static AfinnLexicon Default => shipped.Value;

    /// <summary>Reads <c>term TAB score</c> lines. A term is re-tokenised so that "self-deluded" matches two words.</summary>
    public static AfinnLexicon Load(string path)
    {
        var scores = new Dictionary<string, int>(StringComparer.Ordinal);
        int entries = 0;
        foreach (var (term, score) in LexiconFile.Read(path, "AFINN list", "term<TAB>score", columns: 2))
        {
            entries++;
            if (score != Math.Floor(score)) throw new RlhfException($"{path}: the score of '{term}' must be a whole number, got {score}.");
            if (term.Any(char.IsDigit)) continue;
            var words = Words.Tokenize(term);
            if (words.Length > 0) scores[string.Join(' ', words)] = (int)score;
        }
        return new AfinnLexicon(scores, entries);
    }

    /// <summary>The scores of the terms found in <paramref name="text"/>, and its word count.</summary>
    public (int Sum, int Matches, int WordCount) Match(string text)
    {
        var words = Words.Tokenize(text);
        int sum = 0, matches = 0;
        for (int i = 0; i < words.Length;)
        {
            int taken = 0;
            for (int n = Math.Min(longestPhrase, words.Length - i); n >= 1 && taken == 0; n--)
                if (scores.TryGetValue(string.Join(' ', words, i, n), out int s)) { sum += s; matches++; taken = n; }
            i += Math.Max(taken, 1);
        }
        return (sum, matches, words.Length);
    }

    /// <summary>The AFINN score of a text: the sum of its terms' scores.</summary>
    public int Sum(string text) => Match(text).Sum;

    /// <summary>The sum divided by the number of words (0 without words).</summary>
    public double MeanPerWord(string text)
    {
        var (sum, _, count) = Match(text);
        return count == 0 ? 0 : (double)sum / count;
    }
}
