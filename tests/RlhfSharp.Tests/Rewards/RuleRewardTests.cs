using RlhfSharp.Rewards;

namespace RlhfSharp.Tests.Rewards;

public class RuleRewardTests
{
    static double[] One(IRewardFunction r, string completion) => r.Score([""], [completion]);

    [Fact]
    public void Length_reward_is_minus_penalty_times_distance_beyond_tolerance()
    {
        var r = new LengthReward(TargetWords: 5, PenaltyPerWord: 0.1, Tolerance: 1);
        Assert.Equal(0, One(r, "one two three four five")[0]);
        Assert.Equal(0, One(r, "one two three four")[0]);                      // within tolerance
        Assert.Equal(-0.1 * 2, One(r, "one two")[0], 12);                      // |2 − 5| − 1 = 2
        Assert.Equal(-0.1 * 4, One(r, string.Join(' ', Enumerable.Repeat("w", 10)))[0], 12);
    }

    [Fact]
    public void Keyword_reward_counts_matches_times_weight()
    {
        Assert.Equal(2 * 0.5, One(new KeywordReward(@"\bkind\b", 0.5), "Kind Tom was kind, not unkind.")[0], 12);
        Assert.Equal(-1, One(new KeywordReward("hate|kill", -1, countEachMatch: false), "hate and kill")[0]);
        Assert.Throws<RlhfException>(() => new KeywordReward("("));
    }

    [Fact]
    public void Repeated_ngram_fraction_and_distinct_n_by_hand()
    {
        string[] w = ["a", "b", "a", "b", "a"];                                // bigrams ab ba ab ba: 2 of 4 repeat
        Assert.Equal(0.5, RepetitionPenalty.RepeatedNgramFraction(w, 2));
        Assert.Equal(0.5, RepetitionPenalty.DistinctN(w, 2));
        Assert.Equal(0.4, RepetitionPenalty.DistinctN(w, 1));                   // 2 distinct of 5
        Assert.Equal(0, RepetitionPenalty.RepeatedNgramFraction(["a", "b"], 3)); // too short: no trigrams
        Assert.Equal(-2 * 0.5, One(new RepetitionPenalty(N: 2, Weight: 2), "a b a b a")[0], 12);
        Assert.Equal(-(1 - 0.4), One(new RepetitionPenalty(N: 1, Measure: RepetitionMeasure.DistinctN), "a b a b a")[0], 12);
    }

    [Fact]
    public void Composite_is_the_weighted_sum_of_its_named_parts()
    {
        var length = new LengthReward(4, 1.0);
        var keyword = new KeywordReward("happy", 1.0, name: "happy");
        var composite = new CompositeReward([(length, 0.5), (keyword, 2.0)]);
        string[] prompts = ["p", "p"], completions = ["happy happy", "a b c d"];
        var (total, parts) = composite.ScoreParts(prompts, completions);
        Assert.Equal([-2.0, 0.0], parts["length"]);
        Assert.Equal([2.0, 0.0], parts["happy"]);
        Assert.Equal([0.5 * -2 + 2.0 * 2, 0.0], total);
        Assert.Equal(total, composite.Score(prompts, completions));
    }

    [Fact]
    public void Composite_rejects_duplicate_names_and_mismatched_batches()
    {
        Assert.Throws<RlhfException>(() => new CompositeReward([(new LengthReward(3), 1.0), (new LengthReward(5), 1.0)]));
        Assert.Throws<RlhfException>(() => new LengthReward(3).Score(["a", "b"], ["c"]));
    }
}
