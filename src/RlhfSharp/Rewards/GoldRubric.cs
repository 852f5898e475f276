namespace RlhfSharp.Rewards;

/// <summary>One completion's gold score and its three terms, each already clipped and mapped onto [0, 1].</summary>
/// <param name="Total">The weighted sum of the three terms.</param>
/// <param name="Kindness">Mean valence per word, clipped and mapped onto [0, 1].</param>
/// <param name="Fluency">Mean token log-prob, clipped and mapped onto [0, 1] (0 for an empty completion).</param>
/// <param name="NonRepetition">1 − repeated n-gram fraction (0 for an empty completion).</param>
/// <param name="MeanValence">Raw VADER mean valence per word, before clipping.</param>
/// <param name="Logprob">Raw mean token log-prob under the base model, before clipping (NaN for an empty completion).</param>
public sealed record GoldScore(double Total, double Kindness, double Fluency, double NonRepetition, double MeanValence, double Logprob);

/// <summary>
/// The hidden gold score of the "kinder stories" task: what a person asking for kinder stories would judge by.
/// <c>gold = wₖ·kindness + w_f·fluency + wᵣ·nonRepetition</c>, each term in [0, 1]:
/// kindness = VADER mean valence per word, fluency = mean token log-prob of the completion under the frozen base model,
/// non-repetition = 1 − repeated word-trigram fraction (<see cref="GoldRubricConfig"/> documents the ranges and weights).
/// Used only to label (through <see cref="AnnotatorPool"/>) and to grade; never shown to the reward model.
/// </summary>
public sealed class GoldRubric(VaderLexicon lexicon, FluencyScorer fluency, GoldRubricConfig? config = null) : IRewardFunction
{
    public GoldRubricConfig Config { get; } = Validated(config ?? new GoldRubricConfig());

    public string Name => "gold";

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) =>
        ScoreParts(prompts, completions).Select(s => s.Total).ToArray();

    /// <summary>The gold score with its terms, for reports.</summary>
    public GoldScore[] ScoreParts(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) =>
        Combine(completions, fluency.Score(prompts, completions));

    /// <summary>
    /// Gold scores when the token ids are at hand (the sampler's own), so fluency is measured on exactly the tokens
    /// that were generated and the texts need not be encoded again.
    /// </summary>
    public double[] ScoreIds(IReadOnlyList<string> completions, IReadOnlyList<int[]> promptIds, IReadOnlyList<int[]> completionIds) =>
        Combine(completions, fluency.ScoreIds(promptIds, completionIds)).Select(s => s.Total).ToArray();

    GoldScore[] Combine(IReadOnlyList<string> completions, double[] logprobs)
    {
        var c = Config;
        var result = new GoldScore[completions.Count];
        for (int i = 0; i < result.Length; i++)
        {
            var words = Words.Tokenize(completions[i]);
            double valence = lexicon.MeanValencePerWord(completions[i]);
            double kindness = Unit(valence, c.KindnessMin, c.KindnessMax);
            // No tokens means nothing that reads as a story: the worst fluency, not NaN.
            double fluent = double.IsNaN(logprobs[i]) ? 0 : Unit(logprobs[i], c.FluencyMin, c.FluencyMax);
            double nonRepetition = words.Length == 0 ? 0 : 1 - RepetitionPenalty.RepeatedNgramFraction(words, c.RepetitionNgram);
            double total = c.KindnessWeight * kindness + c.FluencyWeight * fluent + c.NonRepetitionWeight * nonRepetition;
            result[i] = new GoldScore(total, kindness, fluent, nonRepetition, valence, logprobs[i]);
        }
        return result;
    }

    static double Unit(double x, double min, double max) => (Math.Clamp(x, min, max) - min) / (max - min);

    static GoldRubricConfig Validated(GoldRubricConfig c)
    {
        c.Validate();
        return c;
    }
}
