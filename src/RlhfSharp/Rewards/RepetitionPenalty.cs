namespace RlhfSharp.Rewards;

/// <summary>How <see cref="RepetitionPenalty"/> measures repetition.</summary>
public enum RepetitionMeasure
{
    /// <summary>Fraction of word n-grams that already occurred earlier in the text (0 = no repeats).</summary>
    RepeatedNgramFraction,
    /// <summary>distinct-n (Li et al. 2016): unique n-grams / all n-grams (1 = no repeats); penalty uses 1 − distinct-n.</summary>
    DistinctN,
}

/// <summary>
/// A reward that penalises repeated word n-grams: <c>−Weight · repetition</c>, where repetition is in [0, 1]
/// (<see cref="RepeatedNgramFraction"/> or 1 − <see cref="DistinctN"/>). Texts shorter than n words score 0.
/// </summary>
public sealed record RepetitionPenalty(int N = 3, double Weight = 1.0, RepetitionMeasure Measure = RepetitionMeasure.RepeatedNgramFraction) : IRewardFunction
{
    public string Name => $"repetition_{N}gram";

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        Check.SameCount(prompts, completions);
        if (N < 1) throw new RlhfException($"repetition penalty: n must be ≥ 1, got {N}.");
        return completions.Select(c => -Weight * Repetition(Words.Tokenize(c))).ToArray();
    }

    /// <summary>The repetition in [0, 1] of a word sequence under this record's measure.</summary>
    public double Repetition(IReadOnlyList<string> words) => Measure == RepetitionMeasure.DistinctN
        ? 1 - DistinctN(words, N)
        : RepeatedNgramFraction(words, N);

    /// <summary>Of the word n-grams, the fraction that occurred earlier (0 when there are none).</summary>
    /// <example>"a b a b a" with n = 2: bigrams ab, ba, ab, ba → 2 of 4 are repeats → 0.5.</example>
    public static double RepeatedNgramFraction(IReadOnlyList<string> words, int n)
    {
        int total = words.Count - n + 1;
        if (total <= 0) return 0;
        return (double)(total - CountDistinct(words, n)) / total;
    }

    /// <summary>Unique n-grams / all n-grams (1 when there are none).</summary>
    public static double DistinctN(IReadOnlyList<string> words, int n)
    {
        int total = words.Count - n + 1;
        if (total <= 0) return 1;
        return (double)CountDistinct(words, n) / total;
    }

    static int CountDistinct(IReadOnlyList<string> words, int n)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i + n <= words.Count; i++) seen.Add(string.Join('\u0001', Enumerable.Range(i, n).Select(k => words[k])));
        return seen.Count;
    }
}
