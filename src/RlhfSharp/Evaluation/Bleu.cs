namespace RlhfSharp.Evaluation;

/// <summary>
/// Corpus BLEU (Papineni et al. 2002) on already tokenized text, computed the way sacreBLEU does it: clipped n-gram
/// matches and hypothesis n-gram totals summed over the corpus, the closest reference length per sentence (ties go
/// to the shorter), a brevity penalty, and the geometric mean of the n-gram precisions. See <see cref="SacreBleu"/>
/// for the 13a-tokenized, reportable version.
/// </summary>
public static class Bleu
{
    /// <summary>The usual maximum n-gram order.</summary>
    public const int MaxOrder = 4;

    /// <summary>
    /// Sums the sufficient statistics over a corpus. <paramref name="references"/>[i] holds every reference of
    /// hypothesis i (one or more).
    /// </summary>
    public static (long[] Matches, long[] Totals, long HypothesisLength, long ReferenceLength) Statistics(
        IReadOnlyList<IReadOnlyList<string>> hypotheses, IReadOnlyList<IReadOnlyList<IReadOnlyList<string>>> references, int maxOrder = MaxOrder)
    {
        if (hypotheses.Count != references.Count) throw new ArgumentException($"{hypotheses.Count} hypotheses but {references.Count} reference sets.");
        var matches = new long[maxOrder];
        var totals = new long[maxOrder];
        long hypLen = 0, refLen = 0;
        for (int s = 0; s < hypotheses.Count; s++)
        {
            var hyp = hypotheses[s];
            hypLen += hyp.Count;
            refLen += ClosestReferenceLength(hyp.Count, references[s]);
            // A hypothesis n-gram may match at most as often as it occurs in any single reference (clipping).
            var maxRef = new Dictionary<string, int>();
            foreach (var r in references[s])
                foreach (var (gram, count) in NGrams.Count(r, 1, maxOrder))
                    if (!maxRef.TryGetValue(gram, out var c) || c < count) maxRef[gram] = count;
            foreach (var (gram, count) in NGrams.Count(hyp, 1, maxOrder))
            {
                int n = NGrams.Order(gram);
                totals[n - 1] += count;
                if (maxRef.TryGetValue(gram, out var rc)) matches[n - 1] += Math.Min(count, rc);
            }
        }
        return (matches, totals, hypLen, refLen);
    }

    /// <summary>
    /// BLEU from statistics, as sacreBLEU's <c>BLEU.compute_bleu</c>. <paramref name="smoothValue"/> defaults to 0.1
    /// for <see cref="BleuSmoothing.Floor"/> and 1 for <see cref="BleuSmoothing.AddK"/>. With
    /// <paramref name="effectiveOrder"/> the mean runs only over orders the hypotheses are long enough to have.
    /// </summary>
    public static BleuScore Compute(long[] matches, long[] totals, long hypothesisLength, long referenceLength,
        BleuSmoothing smoothing = BleuSmoothing.Exp, double? smoothValue = null, bool effectiveOrder = false)
    {
        int order = matches.Length;
        double value = smoothValue ?? (smoothing == BleuSmoothing.AddK ? 1.0 : 0.1);
        var precisions = new double[order];
        double correctAfter, totalAfter, expFactor = 1;
        int effOrder = order;
        for (int n = 1; n <= order; n++)
        {
            correctAfter = matches[n - 1];
            totalAfter = totals[n - 1];
            if (smoothing == BleuSmoothing.AddK && n > 1) { correctAfter += value; totalAfter += value; }
            if (totalAfter == 0) break;
            if (effectiveOrder) effOrder = n;
            if (correctAfter == 0)
            {
                if (smoothing == BleuSmoothing.Exp) { expFactor *= 2; precisions[n - 1] = 100.0 / (expFactor * totalAfter); }
                else if (smoothing == BleuSmoothing.Floor) precisions[n - 1] = 100.0 * value / totalAfter;
            }
            else precisions[n - 1] = 100.0 * correctAfter / totalAfter;
        }
        double bp = hypothesisLength >= referenceLength ? 1.0
            : hypothesisLength > 0 ? Math.Exp(1 - (double)referenceLength / hypothesisLength) : 0.0;
        // sacreBLEU's my_log: log 0 is a huge negative number, so an empty order zeroes the score without a NaN.
        double logMean = precisions.Take(effOrder).Sum(p => p == 0 ? -9999999999.0 : Math.Log(p)) / effOrder;
        return new BleuScore(bp * Math.Exp(logMean), precisions, bp, hypothesisLength, referenceLength, matches, totals);
    }

    /// <summary>Corpus BLEU of tokenized hypotheses against their references (see <see cref="Statistics"/>).</summary>
    public static BleuScore Corpus(IReadOnlyList<IReadOnlyList<string>> hypotheses, IReadOnlyList<IReadOnlyList<IReadOnlyList<string>>> references,
        BleuSmoothing smoothing = BleuSmoothing.Exp, double? smoothValue = null, bool effectiveOrder = false, int maxOrder = MaxOrder)
    {
        var (m, t, c, r) = Statistics(hypotheses, references, maxOrder);
        return Compute(m, t, c, r, smoothing, smoothValue, effectiveOrder);
    }

    static int ClosestReferenceLength(int hypLength, IReadOnlyList<IReadOnlyList<string>> refs)
    {
        int best = int.MaxValue, bestDiff = int.MaxValue;
        foreach (var r in refs)
        {
            int diff = Math.Abs(r.Count - hypLength);
            if (diff < bestDiff || (diff == bestDiff && r.Count < best)) { bestDiff = diff; best = r.Count; }
        }
        return refs.Count == 0 ? 0 : best;
    }
}
