using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Generation;

/// <summary>Which distribution the sampler's log-probs are of: the one each token was drawn from, and the model's own.</summary>
public class SamplerLogprobsTests
{
    // Loaded by the constructor, outside the tests' dispose scopes (which would dispose weights created inside them).
    readonly CausalLM Stories = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
    Sampler NewSampler() => new(Stories) { PadId = 0, EosIds = [2] };
    static readonly int[][] Prompts = [[1, 403, 407], [1], [1, 403, 407, 261, 378, 432]];

    /// <summary>Top-k = 1 leaves one token: the distribution the sampler draws from is a point mass, log-prob 0.</summary>
    [Fact]
    public void Logprobs_are_of_the_truncated_distribution_the_tokens_were_drawn_from()
    {
        using var scope = NewDisposeScope();
        var (ids, mask) = NewSampler().LeftPad(Prompts);
        using var batch = NewSampler().Sample(ids, mask, new SamplingOptions { Temperature = 1.0, TopK = 1, MaxNewTokens = 12, Seed = 3 });
        var logprobs = (batch.Logprobs * batch.ResponseMask).abs().max().item<float>();
        Assert.Equal(0f, logprobs);
    }

    /// <summary>
    /// Untruncated, the sampling log-probs are log-softmax(logits / T) of a full forward (TRL and OpenRLHF score rollouts
    /// so), and <see cref="SampleBatch.ModelLogprobs"/> stays the raw model's log-softmax whatever the sampling did.
    /// </summary>
    [Fact]
    public void Sampling_logprobs_divide_by_temperature_and_model_logprobs_are_the_raw_log_softmax()
    {
        using var scope = NewDisposeScope();
        var sampler = NewSampler();
        var (ids, mask) = sampler.LeftPad(Prompts);
        using var batch = sampler.Sample(ids, mask, new SamplingOptions { Temperature = 0.7, MaxNewTokens = 12, Seed = 5 });
        using var _ = no_grad();
        int p = batch.PromptLength, n = (int)batch.ResponseMask.shape[1];
        var logits = Stories.Forward(batch.Sequences, batch.AttentionMask, Transformer.PositionsFromMask(batch.AttentionMask));
        var tempered = TokenLogprobs.Of(logits / 0.7, batch.Sequences).narrow(1, p - 1, n) * batch.ResponseMask;
        var raw = TokenLogprobs.Of(logits, batch.Sequences).narrow(1, p - 1, n) * batch.ResponseMask;
        Assert.True(batch.Logprobs.allclose(tempered, rtol: 0, atol: 1e-4), $"max gap {(batch.Logprobs - tempered).abs().max().item<float>()}");
        Assert.True(batch.ModelLogprobs.allclose(raw, rtol: 0, atol: 1e-4), $"max gap {(batch.ModelLogprobs - raw).abs().max().item<float>()}");
        Assert.False(tempered.allclose(raw, rtol: 0, atol: 1e-3)); // T = 0.7 must matter, else the test proves nothing

        // With top-p and a repetition penalty the sampling log-probs move, the model's own do not.
        using var processed = sampler.Sample(ids, mask, new SamplingOptions { Temperature = 0.7, TopP = 0.8, RepetitionPenalty = 1.3, MaxNewTokens = 12, Seed = 5 });
        var logits2 = Stories.Forward(processed.Sequences, processed.AttentionMask, Transformer.PositionsFromMask(processed.AttentionMask));
        var raw2 = TokenLogprobs.Of(logits2, processed.Sequences).narrow(1, processed.PromptLength - 1, processed.ResponseMask.shape[1]) * processed.ResponseMask;
        Assert.True(processed.ModelLogprobs.allclose(raw2, rtol: 0, atol: 1e-4));
    }
}
