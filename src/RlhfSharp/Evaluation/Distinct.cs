namespace RlhfSharp.Evaluation;

/// <summary>
/// distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural Conversation Models"): distinct
/// n-grams over all n-grams across every generated text, on whitespace tokens. 1 means no n-gram repeats anywhere;
/// a policy collapsing onto one phrasing (a known RLHF failure) drives it down.
/// </summary>
public static class Distinct
{
    /// <summary>distinct-<paramref name="n"/> of the texts, 0–1 (0 when there are no n-grams).</summary>
    public static double N(IEnumerable<string> texts, int n)
    {
        var seen = new HashSet<string>();
        long total = 0;
        foreach (var text in texts)
            foreach (var (gram, count) in NGrams.Count(Tokenizer13a.Split(text), n, n))
            {
                seen.Add(gram);
                total += count;
            }
        return total == 0 ? 0 : (double)seen.Count / total;
    }
}
