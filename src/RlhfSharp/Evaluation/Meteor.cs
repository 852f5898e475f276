namespace RlhfSharp.Evaluation;

/// <summary>
/// METEOR (Banerjee &amp; Lavie 2005) following NLTK's <c>meteor_score</c>: lowercase, align words greedily
/// (scanning both sentences from the end), F_mean = P·R / (α·P + (1−α)·R) with α = 0.9, a fragmentation penalty
/// γ·(chunks/matches)^β with β = 3, γ = 0.5, and the best score over references.
/// </summary>
/// <remarks>
/// Only NLTK's first matching stage, exact match, is implemented. Its second stage (Porter-stemmed match: NLTK's
/// PorterStemmer in NLTK_EXTENSIONS mode is ~600 lines of rules and exceptions) and third (WordNet synonyms: needs the
/// WordNet database, which we do not ship) are missing, so scores are lower than NLTK's whenever a hypothesis word
/// matches a reference word only by stem or synonym (NLTK's doctest gives 0.6944 where exact matching gives less).
/// </remarks>
public static class Meteor
{
    /// <summary>METEOR of a whitespace-tokenized hypothesis against its references, 0–1.</summary>
    public static double Score(IReadOnlyList<string> references, string hypothesis, double alpha = 0.9, double beta = 3, double gamma = 0.5) =>
        Score(references.Select(r => (IReadOnlyList<string>)Tokenizer13a.Split(r)).ToList(), Tokenizer13a.Split(hypothesis), alpha, beta, gamma);

    /// <summary>METEOR of a pre-tokenized hypothesis against pre-tokenized references (NLTK's signature), 0–1.</summary>
    public static double Score(IReadOnlyList<IReadOnlyList<string>> references, IReadOnlyList<string> hypothesis, double alpha = 0.9, double beta = 3, double gamma = 0.5) =>
        references.Count == 0 ? 0 : references.Max(r => Single(r, hypothesis, alpha, beta, gamma));

    /// <summary>NLTK's <c>single_meteor_score</c> with exact matching.</summary>
    public static double Single(IReadOnlyList<string> reference, IReadOnlyList<string> hypothesis, double alpha = 0.9, double beta = 3, double gamma = 0.5)
    {
        var hyp = hypothesis.Select((w, i) => (Index: i, Word: w.ToLowerInvariant())).ToList();
        var refs = reference.Select((w, i) => (Index: i, Word: w.ToLowerInvariant())).ToList();
        int hypLength = hyp.Count, refLength = refs.Count;
        var matches = new List<(int H, int R)>();
        // NLTK's _match_enums: from the last hypothesis word back, pair with the last unused equal reference word.
        for (int i = hyp.Count - 1; i >= 0; i--)
            for (int j = refs.Count - 1; j >= 0; j--)
                if (hyp[i].Word == refs[j].Word)
                {
                    matches.Add((hyp[i].Index, refs[j].Index));
                    hyp.RemoveAt(i);
                    refs.RemoveAt(j);
                    break;
                }
        if (matches.Count == 0 || hypLength == 0 || refLength == 0) return 0;
        matches.Sort((a, b) => a.H.CompareTo(b.H));
        int chunks = 1;
        for (int k = 0; k + 1 < matches.Count; k++)
            if (!(matches[k + 1].H == matches[k].H + 1 && matches[k + 1].R == matches[k].R + 1)) chunks++;
        double precision = (double)matches.Count / hypLength, recall = (double)matches.Count / refLength;
        double fmean = precision * recall / (alpha * precision + (1 - alpha) * recall);
        double penalty = gamma * Math.Pow((double)chunks / matches.Count, beta);
        return (1 - penalty) * fmean;
    }
}
