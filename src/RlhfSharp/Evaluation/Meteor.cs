namespace RlhfSharp.Evaluation;

/// <summary>
/// METEOR (Banerjee &amp; Lavie 2005) as NLTK's <c>meteor_score</c> computes it (and so Hugging Face <c>evaluate</c> and
/// RL4LMs): lowercase, align words in three stages (exact, then Porter-stemmed, then WordNet synonyms of the stems), each stage
/// pairing greedily from the end of both sentences over the words the earlier stages left; F_mean = P·R / (α·P +
/// (1−α)·R) with α = 0.9, a fragmentation penalty γ·(chunks/matches)^β with β = 3, γ = 0.5, best score over references.
/// </summary>
/// <remarks>
/// Matches NLTK 3.8 on every case checked (NLTK's and Hugging Face's published examples in the tests; 3,000 random
/// sentence pairs built to exercise all three stages agreed to 1e-12). The string overload splits with
/// <see cref="Tokenizer13a"/>, whereas <c>evaluate</c> uses NLTK's <c>word_tokenize</c> (Penn Treebank rules): the two
/// differ on contractions ("don't" → "do n't") and some quotes, so scores of such text can differ slightly; pass
/// pre-tokenized words for exact parity.
/// </remarks>
public static class Meteor
{
    /// <summary>METEOR of a whitespace-tokenized hypothesis against its references, 0–1.</summary>
    public static double Score(IReadOnlyList<string> references, string hypothesis, double alpha = 0.9, double beta = 3, double gamma = 0.5) =>
        Score(references.Select(r => (IReadOnlyList<string>)Tokenizer13a.Split(r)).ToList(), Tokenizer13a.Split(hypothesis), alpha, beta, gamma);

    /// <summary>METEOR of a pre-tokenized hypothesis against pre-tokenized references (NLTK's signature), 0–1.</summary>
    public static double Score(IReadOnlyList<IReadOnlyList<string>> references, IReadOnlyList<string> hypothesis, double alpha = 0.9, double beta = 3, double gamma = 0.5) =>
        references.Count == 0 ? 0 : references.Max(r => Single(r, hypothesis, alpha, beta, gamma));

    /// <summary>NLTK's <c>single_meteor_score</c> with the shipped WordNet 3.0 (or <paramref name="wordNet"/>).</summary>
    public static double Single(IReadOnlyList<string> reference, IReadOnlyList<string> hypothesis, double alpha = 0.9, double beta = 3, double gamma = 0.5, WordNet? wordNet = null)
    {
        var hyp = hypothesis.Select((w, i) => (Index: i, Word: w.ToLowerInvariant())).ToList();
        var refs = reference.Select((w, i) => (Index: i, Word: w.ToLowerInvariant())).ToList();
        int hypLength = hyp.Count, refLength = refs.Count;
        if (hypLength == 0 || refLength == 0) return 0;
        var matches = Align(hyp, refs, wordNet ?? WordNet.Default);
        if (matches.Count == 0) return 0;
        int chunks = 1;
        for (int k = 0; k + 1 < matches.Count; k++)
            if (!(matches[k + 1].H == matches[k].H + 1 && matches[k + 1].R == matches[k].R + 1)) chunks++;
        double precision = (double)matches.Count / hypLength, recall = (double)matches.Count / refLength;
        double fmean = precision * recall / (alpha * precision + (1 - alpha) * recall);
        double penalty = gamma * Math.Pow((double)chunks / matches.Count, beta);
        return (1 - penalty) * fmean;
    }

    /// <summary>NLTK's <c>_enum_align_words</c>: (hypothesis index, reference index) pairs sorted by hypothesis index.</summary>
    static List<(int H, int R)> Align(List<(int Index, string Word)> hyp, List<(int Index, string Word)> refs, WordNet wordNet)
    {
        var matches = new List<(int H, int R)>();
        Match(hyp, refs, matches, (h, r) => h == r);
        // NLTK's stem stage replaces the words by their stems, so the synonym stage looks up stems ("obeys" as "obey").
        var stems = new Dictionary<string, string>();
        string StemOf(string w) => stems.TryGetValue(w, out var s) ? s : stems[w] = PorterStemmer.Stem(w);
        for (int i = 0; i < hyp.Count; i++) hyp[i] = (hyp[i].Index, StemOf(hyp[i].Word));
        for (int j = 0; j < refs.Count; j++) refs[j] = (refs[j].Index, StemOf(refs[j].Word));
        Match(hyp, refs, matches, (h, r) => h == r);
        var synonyms = new Dictionary<string, HashSet<string>>();
        Match(hyp, refs, matches, (h, r) =>
        {
            if (!synonyms.TryGetValue(h, out var set)) synonyms[h] = set = Synonyms(h, wordNet);
            return set.Contains(r);
        });
        matches.Sort((a, b) => a.H.CompareTo(b.H));
        return matches;
    }

    /// <summary>
    /// NLTK's <c>_match_enums</c>: from the last hypothesis word back, pair it with the last unused reference word that
    /// <paramref name="matches"/> accepts; paired words leave both lists.
    /// </summary>
    static void Match(List<(int Index, string Word)> hyp, List<(int Index, string Word)> refs, List<(int H, int R)> pairs, Func<string, string, bool> matches)
    {
        for (int i = hyp.Count - 1; i >= 0; i--)
            for (int j = refs.Count - 1; j >= 0; j--)
                if (matches(hyp[i].Word, refs[j].Word))
                {
                    pairs.Add((hyp[i].Index, refs[j].Index));
                    hyp.RemoveAt(i);
                    refs.RemoveAt(j);
                    break;
                }
    }

    /// <summary>The word itself and every single-word lemma of every synset it belongs to (NLTK skips names with '_').</summary>
    static HashSet<string> Synonyms(string word, WordNet wordNet)
    {
        var set = new HashSet<string>(StringComparer.Ordinal) { word };
        foreach (int synset in wordNet.Synsets(word))
            foreach (var name in wordNet.LemmaNames(synset))
                if (!name.Contains('_')) set.Add(name);
        return set;
    }
}
