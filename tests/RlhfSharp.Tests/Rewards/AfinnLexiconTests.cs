using RlhfSharp.Rewards;

namespace RlhfSharp.Tests.Rewards;

public class AfinnLexiconTests
{
    static readonly AfinnLexicon Lexicon = AfinnLexicon.Default;

    [Fact]
    public void Shipped_list_has_3382_entries_of_which_3380_can_match()
    {
        Assert.Equal(3382, Lexicon.Entries);
        Assert.Equal(3380, Lexicon.Count);   // gr8 and n00b hold digits, which are never words
        Assert.Equal(0, Lexicon.Sum("gr"));
    }

    [Fact]
    public void Sum_adds_term_scores_and_phrases_match_longest_first()
    {
        Assert.Equal(3 + 3, Lexicon.Sum("Good and happy."));        // good 3, happy 3
        Assert.Equal(-3, Lexicon.Sum("I can't stand it"));         // one phrase, not "can't" + "stand"
        Assert.Equal((3 - 2) / 4.0, Lexicon.MeanPerWord("happy but sad today"), 12);
    }

    [Fact]
    public void Lexicon_rewards_score_the_completion_only()
    {
        var s = LexiconReward.AfinnSum().Score(["horrible"], ["good"]);
        Assert.Equal([3.0], s);
        Assert.Equal([1.9 / 2], LexiconReward.VaderMeanValence().Score(["x"], ["good dog"]));
    }
}
