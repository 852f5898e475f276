using RlhfSharp.Checkpoints;
using RlhfSharp.Evaluation;
using RlhfSharp.Generation;
using RlhfSharp.Rewards;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Evaluation;

/// <summary>Win rate, KL to a reference and perplexity on the built-in stories260K model.</summary>
public sealed class ModelEvaluationTests
{
    sealed class LengthJudge : IRewardFunction
    {
        public string Name => "length";
        public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) => completions.Select(c => (double)c.Length).ToArray();
    }

    [Fact]
    public void Win_rate_counts_ties_as_half()
    {
        // Hand-computed: wins on "ccc" vs "c" and "bb" vs "b", tie on "a" vs "b", loss on "" vs "x" → (2 + 0.5) / 4.
        var r = WinRate.Compute(new LengthJudge(), ["p", "p", "p", "p"], ["ccc", "bb", "a", ""], ["c", "b", "b", "x"]);
        Assert.Equal((2, 1, 1), (r.Wins, r.Ties, r.Losses));
        Assert.Equal(0.625, r.Rate);
    }

    [Fact]
    public void Kl_of_a_model_to_itself_is_zero_and_to_another_model_is_not()
    {
        using var m = PretrainedModel.Load("stories260k");
        using var other = m.Model.Clone();
        using (no_grad())
            foreach (var p in other.parameters()) p.add_(randn_like(p) * 0.05);
        var sampler = new Sampler(m.Model, m.Tokenizer);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (ids, mask) = sampler.LeftPad([m.EncodePrompt("Once upon"), m.EncodePrompt("Lily")]);
        using var batch = sampler.Sample(ids, mask, new SamplingOptions { MaxNewTokens = 12, Seed = 3 });
        Assert.All(KlToReference.PerSampleValues(m.Model, m.Model, batch), kl => Assert.Equal(0.0, kl, 1e-6));
        Assert.All(KlToReference.PerSampleValues(m.Model, other, batch), kl => Assert.NotEqual(0.0, kl, 1e-4));
    }

    [Fact]
    public void Perplexity_is_token_weighted_and_independent_of_batch_padding()
    {
        using var m = PretrainedModel.Load("stories260k");
        string a = "Once upon a time, there was a little girl named Lily.", b = "She liked to play.";
        var pa = Perplexity.Compute(m.Model, m.Tokenizer, [a]);
        var pb = Perplexity.Compute(m.Model, m.Tokenizer, [b]);
        var both = Perplexity.Compute(m.Model, m.Tokenizer, [a, b]);
        Assert.Equal(pa.Tokens + pb.Tokens, both.Tokens);
        // Right padding of the shorter text must not change any log-likelihood.
        Assert.Equal((pa.MeanNll * pa.Tokens + pb.MeanNll * pb.Tokens) / both.Tokens, both.MeanNll, 1e-4);
        Assert.Equal(Math.Exp(both.MeanNll), both.Perplexity, 1e-9);
        // stories260K was trained on such text: far better than uniform over its 512-token vocabulary.
        Assert.InRange(pa.Perplexity, 1, 512);
    }
}
