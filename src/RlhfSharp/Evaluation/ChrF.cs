namespace RlhfSharp.Evaluation;

/// <summary>
/// chrF (Popović 2015) as sacreBLEU 2.x computes it: character n-grams of orders 1..6 with whitespace removed,
/// per-order (hyp, ref, match) counts summed over the corpus, then an F_β score (β = 2 weighs recall 4× as much
/// as precision) of the averaged precision and recall. For several references a sentence keeps the statistics of
/// the reference with the best sentence-level score. Word n-grams (chrF++, <c>word_order</c> &gt; 0) are not
/// implemented: sacreBLEU's default is 0.
/// </summary>
public static class ChrF
{
    /// <summary>
    /// Corpus chrF, 0–100. <paramref name="epsSmoothing"/> true is sacreBLEU's <c>eps_smoothing=True</c> (chrF++.py
    /// and NLTK behaviour: average the per-order F-scores); false (the default) averages precision and recall over
    /// the orders both sides have before taking one F-score.
    /// </summary>
    public static double Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references,
        int charOrder = 6, double beta = 2, bool removeWhitespace = true, bool epsSmoothing = false)
    {
        if (hypotheses.Count != references.Count) throw new ArgumentException($"{hypotheses.Count} hypotheses but {references.Count} reference sets.");
        var total = new double[3 * charOrder];
        for (int s = 0; s < hypotheses.Count; s++)
        {
            var best = references[s].Select(r => Statistics(hypotheses[s], r, charOrder, removeWhitespace))
                .MaxBy(st => FScore(st, charOrder, beta, epsSmoothing))!;
            for (int k = 0; k < total.Length; k++) total[k] += best[k];
        }
        return FScore(total, charOrder, beta, epsSmoothing);
    }

    /// <summary>chrF of one hypothesis (sacreBLEU's <c>sentence_chrf</c>).</summary>
    public static double Sentence(string hypothesis, IReadOnlyList<string> references,
        int charOrder = 6, double beta = 2, bool removeWhitespace = true, bool epsSmoothing = false) =>
        Corpus([hypothesis], [references], charOrder, beta, removeWhitespace, epsSmoothing);

    static double[] Statistics(string hyp, string reference, int order, bool removeWhitespace)
    {
        if (removeWhitespace) { hyp = string.Concat(Tokenizer13a.Split(hyp)); reference = string.Concat(Tokenizer13a.Split(reference)); }
        var stats = new double[3 * order];
        for (int n = 1; n <= order; n++)
        {
            var h = CharNGrams(hyp, n);
            var r = CharNGrams(reference, n);
            stats[3 * (n - 1)] = h.Values.Sum();
            stats[3 * (n - 1) + 1] = r.Values.Sum();
            stats[3 * (n - 1) + 2] = h.Sum(kv => Math.Min(kv.Value, r.GetValueOrDefault(kv.Key)));
        }
        return stats;
    }

    static Dictionary<string, int> CharNGrams(string text, int n)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        // sacreBLEU slices Python strings, i.e. code points: count runes so a surrogate pair is one character.
        var runes = text.EnumerateRunes().Select(r => r.ToString()).ToList();
        for (int i = 0; i + n <= runes.Count; i++)
        {
            var key = string.Concat(runes.Skip(i).Take(n));
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        return counts;
    }

    static double FScore(double[] stats, int order, double beta, bool epsSmoothing)
    {
        const double eps = 1e-16;
        double factor = beta * beta, score = 0, avgPrec = 0, avgRec = 0;
        int effectiveOrder = 0;
        for (int i = 0; i < order; i++)
        {
            double nHyp = stats[3 * i], nRef = stats[3 * i + 1], nMatch = stats[3 * i + 2];
            double prec = nHyp > 0 ? nMatch / nHyp : eps;
            double rec = nRef > 0 ? nMatch / nRef : eps;
            double denom = factor * prec + rec;
            score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
            if (nHyp > 0 && nRef > 0) { avgPrec += prec; avgRec += rec; effectiveOrder++; }
        }
        if (epsSmoothing) return 100 * score / order;
        if (effectiveOrder == 0) return 0;
        avgPrec /= effectiveOrder;
        avgRec /= effectiveOrder;
        return avgPrec + avgRec > 0 ? 100 * (1 + factor) * avgPrec * avgRec / (factor * avgPrec + avgRec) : 0;
    }
}
