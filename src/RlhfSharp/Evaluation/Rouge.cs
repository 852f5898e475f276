using System.Text.RegularExpressions;

namespace RlhfSharp.Evaluation;

/// <summary>
/// ROUGE-N, ROUGE-L and ROUGE-Lsum (Lin 2004) as Google's <c>rouge-score</c> package computes them without a stemmer:
/// lowercase, every run of characters other than a–z and 0–9 is a separator, precision over the prediction and
/// recall over the target. ROUGE-L is the sentence-level LCS; ROUGE-Lsum splits both texts on newlines and counts
/// union-LCS hits per target sentence (Lin 2004 §3.2), each token used at most as often as it occurs on both sides.
/// The Porter stemmer option (<c>use_stemmer=True</c>) is not implemented.
/// </summary>
public static partial class Rouge
{
    [GeneratedRegex("[^a-z0-9]+")] private static partial Regex NonAlphanumeric();

    /// <summary>rouge-score's default tokenizer: lowercase (ASCII letters only survive), split on non-alphanumerics.</summary>
    public static string[] Tokenize(string text) =>
        NonAlphanumeric().Replace(text.ToLowerInvariant(), " ").Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>ROUGE-N: clipped n-gram overlap.</summary>
    public static RougeScore N(string target, string prediction, int n)
    {
        var t = NGrams.Count(Tokenize(target), n, n);
        var p = NGrams.Count(Tokenize(prediction), n, n);
        int overlap = t.Sum(kv => Math.Min(kv.Value, p.GetValueOrDefault(kv.Key)));
        int tCount = t.Values.Sum(), pCount = p.Values.Sum();
        return RougeScore.From(pCount > 0 ? (double)overlap / pCount : 0, tCount > 0 ? (double)overlap / tCount : 0);
    }

    /// <summary>ROUGE-L: longest common subsequence of the whole token sequences.</summary>
    public static RougeScore L(string target, string prediction)
    {
        var t = Tokenize(target);
        var p = Tokenize(prediction);
        if (t.Length == 0 || p.Length == 0) return new RougeScore(0, 0, 0);
        int lcs = LcsTable(t, p)[t.Length, p.Length];
        return RougeScore.From((double)lcs / p.Length, (double)lcs / t.Length);
    }

    /// <summary>ROUGE-Lsum: summary-level union LCS over newline-separated sentences.</summary>
    public static RougeScore Lsum(string target, string prediction)
    {
        static List<string[]> Sentences(string text) => text.Split('\n').Where(s => s.Length > 0).Select(Tokenize).ToList();
        var refSents = Sentences(target);
        var canSents = Sentences(prediction);
        int m = refSents.Sum(s => s.Length), n = canSents.Sum(s => s.Length);
        if (m == 0 || n == 0) return new RougeScore(0, 0, 0);
        var refCounts = Counts(refSents);
        var canCounts = Counts(canSents);
        int hits = 0;
        foreach (var r in refSents)
        {
            var union = new SortedSet<int>(canSents.SelectMany(c => LcsIndices(r, c)));
            foreach (var token in union.Select(i => r[i]))
                if (canCounts.GetValueOrDefault(token) > 0 && refCounts.GetValueOrDefault(token) > 0)
                {
                    hits++;
                    canCounts[token]--;
                    refCounts[token]--;
                }
        }
        return RougeScore.From((double)hits / n, (double)hits / m);
    }

    static Dictionary<string, int> Counts(List<string[]> sentences)
    {
        var counts = new Dictionary<string, int>();
        foreach (var t in sentences.SelectMany(s => s)) counts[t] = counts.GetValueOrDefault(t) + 1;
        return counts;
    }

    static int[,] LcsTable(string[] r, string[] c)
    {
        var t = new int[r.Length + 1, c.Length + 1];
        for (int i = 1; i <= r.Length; i++)
            for (int j = 1; j <= c.Length; j++)
                t[i, j] = r[i - 1] == c[j - 1] ? t[i - 1, j - 1] + 1 : Math.Max(t[i - 1, j], t[i, j - 1]);
        return t;
    }

    /// <summary>Indices into <paramref name="r"/> of one LCS, backtracked with rouge-score's tie-breaking.</summary>
    static List<int> LcsIndices(string[] r, string[] c)
    {
        var t = LcsTable(r, c);
        var lcs = new List<int>();
        for (int i = r.Length, j = c.Length; i > 0 && j > 0;)
        {
            if (r[i - 1] == c[j - 1]) { lcs.Insert(0, i - 1); i--; j--; }
            else if (t[i, j - 1] > t[i - 1, j]) j--;
            else i--;
        }
        return lcs;
    }
}
