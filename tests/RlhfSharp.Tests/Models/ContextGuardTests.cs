using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>No family runs past its context: generation and training refuse, as GPT-2 already did.</summary>
public sealed class ContextGuardTests
{
    [Theory]
    [InlineData("llama_tiny_gqa")]
    [InlineData("qwen2_tiny_tied")]
    [InlineData("gpt2_tiny")]
    public void Generation_past_the_context_is_refused_for_every_family(string fixture)
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(new HfFixture(fixture).Dir);
        int positions = model.Config.MaxPositions;
        var sampler = new Sampler(model);
        var prompt = Enumerable.Range(0, positions - 3).Select(i => 1 + i % 50).ToArray();
        var e = Assert.Throws<RlhfException>(() => sampler.Generate([prompt], new SamplingOptions { MaxNewTokens = 10, Temperature = 0 }));
        Assert.Contains($"{positions} positions", e.Message);
    }

    [Theory]
    [InlineData("llama_tiny_gqa")]
    [InlineData("qwen2_tiny_tied")]
    public void A_forward_pass_longer_than_the_context_is_refused(string fixture)
    {
        // The training path (SFT, RM, DPO… all call the model's forward): a 512-position LLaMA trained on 2048 tokens before.
        using var model = HuggingFaceCheckpoint.LoadCausalLM(new HfFixture(fixture).Dir);
        int positions = model.Config.MaxPositions;
        using var ids = ones([2, positions + 1], ScalarType.Int64);
        var e = Assert.Throws<RlhfException>(() => model.Forward(ids));
        Assert.Contains("max_position_embeddings", e.Message);
        using var fits = ones([2, positions], ScalarType.Int64);
        using var _ = no_grad();
        Assert.Equal(positions, model.Forward(fits).shape[1]);
    }
}
