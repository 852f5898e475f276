using RlhfSharp.Synthesis;

namespace RlhfSharp.Tests.Synthesis;

/// <summary>Self-instruct's filters (Wang et al. 2022 §2.3; bootstrap_instructions.py), on cases worked by hand.</summary>
public class InstructionFilterTests
{
    [Theory]
    [InlineData("Give me three fun facts.", null)]
    [InlineData("Name two cats.", "too short (3 words or fewer)")]
    [InlineData("Describe the image below in detail.", "mentions 'image'")]
    [InlineData("Explain how to go to the nearest station.", "mentions 'go to'")]
    [InlineData("Write a program that sorts a list.", "asks for a program")]
    [InlineData("\"Quote\" this sentence for me please.", "starts with punctuation")]
    [InlineData("Élaborez une liste de cinq fruits.", "starts with a non-ASCII character")]
    public void Quality_rules_follow_self_instruct(string instruction, string? problem) =>
        Assert.Equal(problem, InstructionFilter.QualityProblem(instruction));

    [Fact]
    public void Blacklisted_words_match_whole_words_only()
    {
        // "profile" contains "file" but is not the word "file"; "mapping" is not "map".
        Assert.Null(InstructionFilter.QualityProblem("Update the user profile with a new mapping rule."));
        Assert.Equal("too long (over 150 words)", InstructionFilter.QualityProblem(string.Join(' ', Enumerable.Repeat("word", 151))));
        Assert.Null(InstructionFilter.QualityProblem(string.Join(' ', Enumerable.Repeat("word", 150))));
    }

    [Fact]
    public void A_reply_to_the_numbered_prompt_splits_into_items_with_or_without_the_first_number()
    {
        Assert.Equal(["Tell a joke about dogs.", "List three  colours.".Replace("  ", " "), "Translate hello into French."],
            InstructionFilter.SplitList(" Tell a joke about dogs.\n10. List three  colours.\n11) Translate hello\ninto French."));
        Assert.Equal(["Tell a joke about dogs.", "Sing."], InstructionFilter.SplitList("9. Tell a joke about dogs.\n10. Sing."));
    }

    [Fact]
    public void Novelty_is_rouge_l_f1_against_the_pool()
    {
        // Worked by hand: [give me three fun facts about cats] vs [give me three facts about dogs]: LCS 5,
        // P = 5/6, R = 5/7, F1 = 2PR/(P+R) = 50/65.
        double f = InstructionFilter.MaxSimilarity("Give me three facts about dogs", ["Give me three fun facts about cats", "Sing a song"]);
        Assert.Equal(50.0 / 65.0, f, 12);
        Assert.True(f >= InstructionFilter.MaxRougeL);
        Assert.Equal(0, InstructionFilter.MaxSimilarity("anything at all", []));
    }
}
