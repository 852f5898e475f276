using RlhfSharp.Generation;
using RlhfSharp.Rewards;
using RlhfSharp.Tests.Tokenization;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Rewards;

public class FluencyScorerTests
{
    static FluencyScorer Scorer(PaddingSide padding = PaddingSide.Right, int batchSize = 16) =>
        new(BaseModel.Value.Model, BaseModel.Value.Tokenizer) { Padding = padding, BatchSize = batchSize };

    [Fact]
    public void Score_is_the_mean_log_softmax_at_the_completion_tokens()
    {
        int[] prompt = [1, 403, 407], completion = [261, 378, 432];
        double score = Scorer().ScoreIds([prompt], [completion])[0];

        using var _ = no_grad();
        long[] all = [.. prompt.Select(x => (long)x), .. completion.Select(x => (long)x)];
        var logprobs = BaseModel.Value.Model.Forward(tensor(all, [1, all.Length])).log_softmax(-1)[0];
        double manual = 0;
        for (int t = prompt.Length - 1; t < all.Length - 1; t++) manual += logprobs[t, all[t + 1]].item<float>();
        Assert.Equal(manual / completion.Length, score, 5);
    }

    [Fact]
    public void Left_right_padding_and_batching_give_each_row_its_own_score()
    {
        int[][] prompts = [[1, 403, 407], [1], [1, 403, 407, 261, 378, 432, 383]];
        int[][] completions = [[261, 378], Stories260K.GreedyIds[..20], [286, 261, 376, 298, 315]];
        var right = Scorer(PaddingSide.Right).ScoreIds(prompts, completions);
        var left = Scorer(PaddingSide.Left).ScoreIds(prompts, completions);
        var alone = Scorer(batchSize: 1).ScoreIds(prompts, completions);
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(alone[i], right[i], 4);
            Assert.Equal(alone[i], left[i], 4);
        }
    }

    [Fact]
    public void Greedy_continuation_reads_better_than_its_tokens_shuffled()
    {
        int[] greedy = Stories260K.GreedyIds[..48];
        var random = new Random(5);
        int[] shuffled = greedy.OrderBy(_ => random.Next()).ToArray();
        var s = Scorer().ScoreIds([[1], [1]], [greedy, shuffled]);
        Assert.True(s[0] > -1.0, $"greedy {s[0]}");
        Assert.True(s[0] > s[1] + 2.0, $"greedy {s[0]} vs shuffled {s[1]}");
    }

    [Fact]
    public void Text_score_matches_the_samplers_logprobs_for_its_own_completion()
    {
        var pm = BaseModel.Value;
        const string prompt = "Once upon a time";
        var c = new Sampler(pm.Model, pm.Tokenizer).Generate([pm.EncodePrompt(prompt)], new SamplingOptions { MaxNewTokens = 24, Temperature = 0 })[0];
        double score = Scorer().Score([prompt], [c.Text])[0];
        Assert.Equal(c.Logprobs.Average(x => (double)x), score, 4);
    }

    [Fact]
    public void Empty_completion_scores_NaN() => Assert.True(double.IsNaN(Scorer().Score(["Once"], [""])[0]));
}
