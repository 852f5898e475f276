using RlhfSharp.Rewards;

namespace RlhfSharp.Tests.Rewards;

public class VaderLexiconTests
{
    static readonly VaderLexicon Lexicon = VaderLexicon.Default;
    static double N(double x) => x / Math.Sqrt(x * x + 15); // VADER's normalisation, written out again on purpose

    [Fact]
    public void Shipped_lexicon_has_7520_entries_with_known_valences()
    {
        Assert.Equal(7520, Lexicon.Entries);
        Assert.Equal(7506, Lexicon.Count);                  // 14 emoticon/slang tokens are listed twice
        Assert.Equal(1.2, Lexicon.Valence("ok"));           // "ok" is on lines 352 (1.6) and 4895 (1.2): the later wins
        Assert.Equal(1.9, Lexicon.Valence("good"));
        Assert.Equal(-2.5, Lexicon.Valence("horrible"));
        Assert.Equal(2.7, Lexicon.Valence("happy"));
        Assert.Null(Lexicon.Valence("dog"));
    }

    [Fact]
    public void Possessive_falls_back_to_its_stem()
    {
        Assert.Equal(2.2, Lexicon.Valence("friend's"));
        Assert.Null(Lexicon.Valence("lily's"));
    }

    [Fact]
    public void Words_are_lower_case_letter_runs_with_inner_apostrophes()
    {
        Assert.Equal(["don't", "cry", "lily's", "ball", "well", "known", "hi"], Words.Tokenize("Don’t CRY!! Lily's ball, well-known 42 'hi' :-)"));
        Assert.Empty(Words.Tokenize(""));
    }

    [Theory]
    [InlineData("The dog is good.", 1.9 / 4)]                               // the, dog, is, good
    [InlineData("Lily was happy, but Tom was sad!", (2.7 - 2.1) / 7)]       // 7 words, happy and sad in the lexicon
    [InlineData("She loved her friend's warm hug.", (2.9 + 2.2 + 0.9 + 2.1) / 6)]
    [InlineData("It is not good.", 1.9 / 4)]                                // no rules: "not" does not flip the mean
    [InlineData("...", 0.0)]
    public void Mean_valence_per_word_is_the_lexicon_sum_over_all_words(string text, double expected) =>
        Assert.Equal(expected, Lexicon.MeanValencePerWord(text), 12);

    [Fact]
    public void Compound_of_one_word_is_its_normalised_valence() =>
        Assert.Equal(1.9 / Math.Sqrt(1.9 * 1.9 + 15), Lexicon.Compound("good"), 12);

    [Theory]
    [InlineData("not good", -0.74 * 1.9)]
    [InlineData("it isn't good", -0.74 * 1.9)]
    [InlineData("never very much good", -0.74 * (1.9 + 0.293 * 0.95))]  // booster two back (×0.95), negator three back
    [InlineData("horrible", -2.5)]
    [InlineData("not horrible", -0.74 * -2.5)]
    [InlineData("a dog, not a cat, was good", 1.9)]                       // the negator is four words back: no effect
    public void Negation_within_three_words_flips_and_scales_by_0_74(string text, double sum) =>
        Assert.Equal(N(sum), Lexicon.Compound(text), 12);

    [Theory]
    [InlineData("very good", 1.9 + 0.293)]
    [InlineData("very horrible", -2.5 - 0.293)]
    [InlineData("slightly good", 1.9 - 0.293)]
    [InlineData("it is not very good", -0.74 * (1.9 + 0.293))]
    public void Boosters_add_0_293_toward_the_words_sign(string text, double sum) =>
        Assert.Equal(N(sum), Lexicon.Compound(text), 12);

    [Theory]
    [InlineData("good but horrible", 0.5 * 1.9 + 1.5 * -2.5)]
    [InlineData("happy and good, but sad", 0.5 * (2.7 + 1.9) + 1.5 * -2.1)]
    [InlineData("good!!", 1.9 + 2 * 0.292)]
    [InlineData("good!!!!!!!", 1.9 + 4 * 0.292)]                            // at most four count
    [InlineData("horrible!", -2.5 - 0.292)]
    [InlineData("the dog!!!", 0.0)]                                         // nothing to emphasise
    public void But_rule_and_exclamations_follow_the_paper(string text, double sum) =>
        Assert.Equal(N(sum), Lexicon.Compound(text), 12);

    [Fact]
    public void Compound_stays_inside_minus_one_one()
    {
        string praise = string.Concat(Enumerable.Repeat("great love happy ", 50));
        Assert.InRange(Lexicon.Compound(praise), 0.99, 1.0);
        Assert.Equal(0, Lexicon.Compound(""));
    }
}
