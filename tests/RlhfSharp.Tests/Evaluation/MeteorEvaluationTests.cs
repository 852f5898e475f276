using RlhfSharp.Evaluation;

namespace RlhfSharp.Tests.Evaluation;

public sealed class MeteorEvaluationTests
{
    [Fact]
    public void Non_matching_hypothesis_scores_zero() =>
        // NLTK nltk/translate/meteor_score.py doctest: meteor_score([['this','is','a','cat']], ['non','matching','hypothesis']) == 0.0
        Assert.Equal(0.0, Meteor.Score([(IReadOnlyList<string>)["this", "is", "a", "cat"]], ["non", "matching", "hypothesis"]));

    [Fact]
    public void Exact_matches_give_fmean_times_fragmentation_penalty()
    {
        // Hand-computed from NLTK's formula (no published exact-only value exists; NLTK's doctests use WordNet):
        // hyp "a b c d", ref "a b x c d": 4 matches, P = 1, R = 4/5, Fmean = P·R/(0.9P + 0.1R) = 0.8/0.98;
        // chunks "a b" and "c d" = 2, penalty = 0.5·(2/4)^3 = 0.0625; score = 0.9375 · 0.8/0.98 = 0.765306122…
        Assert.Equal(0.9375 * 0.8 / 0.98, Meteor.Score(["a b x c d"], "a b c d"), 1e-12);
    }

    [Fact]
    public void Best_reference_wins_and_case_is_ignored()
    {
        // Hand-computed: identical 3-word sentence: P = R = 1, one chunk, penalty 0.5·(1/3)^3 = 1/54.
        Assert.Equal(1 - 1.0 / 54, Meteor.Score(["completely different", "The Cat sat"], "the cat SAT"), 1e-12);
    }
}
