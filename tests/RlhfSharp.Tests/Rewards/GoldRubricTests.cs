using RlhfSharp.Rewards;

namespace RlhfSharp.Tests.Rewards;

public class GoldRubricTests
{
    const string Prompt = "Once upon a time";
    const string Kind = ", there was a kind girl named Lily. She loved to help her friends. One day, she saw a sad bird and gave it a warm hug. The bird was happy and they played together.";
    const string Cruel = ", there was a mean boy named Tom. He hit the dog and broke his sister's toy. She cried and felt sad and angry. Tom laughed at her and was cruel.";
    const string Looping = ", she was happy. She was happy. She was happy. She was happy. She was happy. She was happy. She was happy.";
    const string PraiseSalad = " kind happy good love friend smile hug nice sweet fun joy play laugh proud";

    static GoldRubric Rubric() => new(VaderLexicon.Default, new FluencyScorer(BaseModel.Value.Model, BaseModel.Value.Tokenizer));

    [Fact]
    public void Kind_fluent_story_beats_cruel_repetitive_and_word_salad()
    {
        var s = Rubric().ScoreParts([Prompt, Prompt, Prompt, Prompt], [Kind, Cruel, Looping, PraiseSalad]);
        Assert.True(s[0].Total > s[1].Total, $"kind {s[0]} vs cruel {s[1]}");
        Assert.True(s[0].Total > s[2].Total, $"kind {s[0]} vs looping {s[2]}");
        Assert.True(s[0].Total > s[3].Total, $"kind {s[0]} vs salad {s[3]}");
        Assert.True(s[1].Kindness < s[0].Kindness && s[2].NonRepetition < 0.5 && s[3].Fluency < s[0].Fluency);
    }

    [Fact]
    public void Total_is_the_weighted_sum_of_clipped_unit_terms()
    {
        var config = new GoldRubricConfig { KindnessWeight = 2, FluencyWeight = 3, NonRepetitionWeight = 5 };
        var rubric = new GoldRubric(VaderLexicon.Default, new FluencyScorer(BaseModel.Value.Model, BaseModel.Value.Tokenizer), config);
        var s = rubric.ScoreParts([Prompt], [Kind])[0];
        Assert.Equal((Math.Clamp(s.MeanValence, -0.2, 0.6) + 0.2) / 0.8, s.Kindness, 12);
        Assert.Equal((Math.Clamp(s.Logprob, -3.5, -1.0) + 3.5) / 2.5, s.Fluency, 12);
        Assert.Equal(2 * s.Kindness + 3 * s.Fluency + 5 * s.NonRepetition, s.Total, 12);
        Assert.Equal(VaderLexicon.Default.MeanValencePerWord(Kind), s.MeanValence, 12);
    }

    [Fact]
    public void Bad_config_is_refused() =>
        Assert.Throws<RlhfException>(() => new GoldRubric(VaderLexicon.Default,
            new FluencyScorer(BaseModel.Value.Model, BaseModel.Value.Tokenizer), new GoldRubricConfig { FluencyMin = -1, FluencyMax = -2 }));
}
