namespace RlhfSharp.Evaluation;

/// <summary>
/// sacreBLEU-compatible corpus BLEU on raw (detokenized) text: 13a tokenization, 4-grams, exponential smoothing,
/// case-sensitive, the defaults of <c>sacrebleu.corpus_bleu</c> and its signature
/// <c>nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.x</c>.
/// </summary>
public static class SacreBleu
{
    /// <summary>
    /// BLEU of <paramref name="hypotheses"/> against <paramref name="references"/>[i] (all references of hypothesis i).
    /// <paramref name="tokenize"/> false is sacreBLEU's <c>tokenize='none'</c> (split on whitespace only).
    /// </summary>
    public static BleuScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references,
        bool tokenize = true, bool lowercase = false, BleuSmoothing smoothing = BleuSmoothing.Exp, double? smoothValue = null, bool effectiveOrder = false)
    {
        string[] Tok(string s)
        {
            if (lowercase) s = s.ToLowerInvariant();
            s = s.TrimEnd();
            return Tokenizer13a.Split(tokenize ? Tokenizer13a.Tokenize(s) : s);
        }
        var hyp = hypotheses.Select(h => (IReadOnlyList<string>)Tok(h)).ToList();
        var refs = references.Select(rs => (IReadOnlyList<IReadOnlyList<string>>)rs.Select(r => (IReadOnlyList<string>)Tok(r)).ToList()).ToList();
        return Bleu.Corpus(hyp, refs, smoothing, smoothValue, effectiveOrder);
    }

    /// <summary>Turns sacreBLEU's reference streams (<c>refs[k][i]</c> = k-th reference of sentence i) into per-sentence sets.</summary>
    public static IReadOnlyList<IReadOnlyList<string>> FromStreams(IReadOnlyList<IReadOnlyList<string>> streams) =>
        Enumerable.Range(0, streams[0].Count).Select(i => (IReadOnlyList<string>)streams.Select(s => s[i]).ToList()).ToList();
}
