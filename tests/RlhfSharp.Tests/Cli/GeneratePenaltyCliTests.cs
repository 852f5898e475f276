using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Tests.Generation;

namespace RlhfSharp.Tests.Cli;

public sealed class GeneratePenaltyCliTests
{
    [Fact]
    public void Generate_with_presence_and_frequency_penalties_gives_the_formulas_greedy_tokens()
    {
        var r = RlhfProcess.Run("generate", "--model", "stories260k", "--prompt-ids", "1", "--max-new-tokens", "40", "--temperature", "0",
            "--presence-penalty", "2", "--frequency-penalty", "2", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var newIds = JsonNode.Parse(r.Stdout.Trim())!["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        using var model = PretrainedModel.Load("stories260k");
        var eos = model.Tokenizer.EosIds.ToHashSet();
        Assert.Equal(PenalisedGreedy.Tokens(model.Model, [1], 40, 2, 2, eos), newIds);
        Assert.NotEqual(PenalisedGreedy.Tokens(model.Model, [1], 40, 0, 0, eos), newIds);
    }

    [Fact]
    public void Generate_refuses_a_penalty_outside_minus_2_to_2()
    {
        var r = RlhfProcess.Run("generate", "--prompt-ids", "1", "--frequency-penalty", "2.5");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("frequency_penalty", r.Stderr);
    }
}
