namespace RlhfSharp.Rewards;

/// <summary>
/// Weights and clipping of the hidden "kinder stories" gold rubric (DESIGN.md). Each term is first clipped to a range
/// and mapped linearly onto [0, 1], so a weight reads as "how many gold points the whole range of that term is worth".
/// The ranges come from 96 samples of the base model (stories260K, temperature 1, 64 new tokens, 8 hand-written
/// openings, seed 1) and 8 greedy ones; the numbers are quoted so a change can be judged against them.
/// </summary>
/// <remarks>
/// The weights were chosen against three degenerate ways to look kind, none of which a person would prefer to an
/// ordinary base story (gold 2.70 on average; 5th–95th percentile 2.46–2.96):
/// a salad of positive words ("kind happy good love friend …": 2.50), one kind sentence looped ("She was happy." six times: 1.30), and
/// greedy looping (fluency at the cap, but non-repetition ≈ 0.71). A kind, fluent hand-written story scores 3.26, a cruel
/// one 2.16.
/// </remarks>
public sealed record GoldRubricConfig
{
    /// <summary>
    /// Kindness is VADER mean valence per word, not the compound score: with the original VADER, 48 base samples at
    /// temperature 1 averaged 0.62 compound and 77% were above 0.5 (our <see cref="VaderLexicon.Compound"/> on the 96 samples: 0.42 and
    /// 51%), so it saturates and leaves little to improve; mean valence per word does not. Weight 1: kindness is what
    /// the person asked for and the main source of variance between ordinary stories.
    /// </summary>
    public double KindnessWeight { get; init; } = 1.0;

    /// <summary>Valence per word at which kindness scores 0. Base samples: mean 0.094, 5th percentile −0.038, min −0.097;
    /// a cruel hand-written story: −0.29.</summary>
    public double KindnessMin { get; init; } = -0.2;

    /// <summary>
    /// Valence per word at which kindness stops paying. Base samples: 95th percentile 0.255, max 0.348, so there is room to
    /// improve. Above 0.6 a text is mostly praise words ("happy", 2.7; "love", 3.2), which is not worth more to the person.
    /// </summary>
    public double KindnessMax { get; init; } = 0.6;

    /// <summary>
    /// Fluency is the mean token log-prob of the completion under the frozen base model: the story must still read like
    /// a story. As much as kindness, so that a salad of kind words loses to an ordinary story.
    /// </summary>
    public double FluencyWeight { get; init; } = 1.0;

    /// <summary>Log-prob per token at which fluency scores 0. Base samples: mean −1.40, min −2.13; their words shuffled: −4.96.</summary>
    public double FluencyMin { get; init; } = -3.5;

    /// <summary>
    /// Log-prob per token at which fluency stops paying. Base samples: 95th percentile −1.02; greedy decoding reaches −0.57,
    /// mostly by looping. Capping at −1.0 means being more predictable than a good sample earns nothing.
    /// </summary>
    public double FluencyMax { get; init; } = -1.0;

    /// <summary>
    /// Non-repetition is 1 − the fraction of word n-grams seen earlier in the completion. Base samples: 0.996 on average
    /// (min 0.926); greedy: 0.71. Weight 1.5, the largest per unit, because repeating a kind sentence is the cheapest way to
    /// collect kindness and fluency at once; ordinary stories hardly differ on it, so it rarely decides between them.
    /// </summary>
    public double NonRepetitionWeight { get; init; } = 1.5;

    /// <summary>n of the counted n-grams: trigrams, because bigrams such as "she was" repeat in any story.</summary>
    public int RepetitionNgram { get; init; } = 3;

    public void Validate()
    {
        if (!(KindnessMax > KindnessMin)) throw new RlhfException($"gold rubric: kindness max ({KindnessMax}) must exceed min ({KindnessMin}).");
        if (!(FluencyMax > FluencyMin)) throw new RlhfException($"gold rubric: fluency max ({FluencyMax}) must exceed min ({FluencyMin}).");
        if (KindnessWeight < 0 || FluencyWeight < 0 || NonRepetitionWeight < 0) throw new RlhfException("gold rubric: weights must be ≥ 0.");
        if (RepetitionNgram < 1) throw new RlhfException($"gold rubric: n-gram size must be ≥ 1, got {RepetitionNgram}.");
    }
}
