namespace RlhfSharp.Rewards;

/// <summary>
/// A sentiment reward from a word list, scored on the completion only (the prompt is ignored). Build one with
/// <see cref="VaderMeanValence"/>, <see cref="VaderCompound"/>, <see cref="AfinnSum"/> or <see cref="AfinnMean"/>.
/// </summary>
public sealed class LexiconReward : IRewardFunction
{
    readonly Func<string, double> measure;

    LexiconReward(string name, Func<string, double> measure)
    {
        Name = name;
        this.measure = measure;
    }

    public string Name { get; }

    /// <summary>VADER valence summed over lexicon words, divided by the word count (<see cref="VaderLexicon.MeanValencePerWord"/>).</summary>
    public static LexiconReward VaderMeanValence(VaderLexicon? lexicon = null)
    {
        var l = lexicon ?? VaderLexicon.Default;
        return new("vader_mean_valence", l.MeanValencePerWord);
    }

    /// <summary>VADER's compound score in (−1, 1) (<see cref="VaderLexicon.Compound"/>); saturates on long positive texts.</summary>
    public static LexiconReward VaderCompound(VaderLexicon? lexicon = null)
    {
        var l = lexicon ?? VaderLexicon.Default;
        return new("vader_compound", l.Compound);
    }

    /// <summary>The AFINN sum of term scores; grows with length, so pair it with a <see cref="LengthReward"/>.</summary>
    public static LexiconReward AfinnSum(AfinnLexicon? lexicon = null)
    {
        var l = lexicon ?? AfinnLexicon.Default;
        return new("afinn_sum", t => l.Sum(t));
    }

    /// <summary>The AFINN sum divided by the number of words.</summary>
    public static LexiconReward AfinnMean(AfinnLexicon? lexicon = null)
    {
        var l = lexicon ?? AfinnLexicon.Default;
        return new("afinn_mean", l.MeanPerWord);
    }

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        Check.SameCount(prompts, completions);
        return completions.Select(measure).ToArray();
    }
}
