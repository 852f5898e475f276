using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>Our forward pass against HF transformers v4.44 (fixtures/hf), at the README's 1e-5 tolerance.</summary>
public class HfParityTests
{
    [Theory]
    [InlineData("gpt2_tiny")]
    [InlineData("llama_tiny_gqa")]
    [InlineData("qwen2_tiny_tied")]
    public void Causal_lm_logits_hidden_states_and_logprobs_match_hf(string name) => HfParity.Forward(new HfFixture(name), name);

    [Fact]
    public void Reward_model_scores_and_pooling_match_hf()
    {
        var fx = new HfFixture("llama_reward_tiny");
        Assert.True(HuggingFaceCheckpoint.IsScoreModel(fx.Dir));
        using var model = HuggingFaceCheckpoint.LoadScoreModel(fx.Dir);
        foreach (var c in fx.Cases("forward"))
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            string what = $"reward/{c["name"]}";
            var ids = HfFixture.Ints(c["input_ids"])!;
            var mask = HfFixture.Ints(c["attention_mask"]);
            var positions = HfFixture.Ints(c["position_ids"]);
            var compare = HfFixture.Ints(c["compare_mask"])!;

            var pooledIndex = ScoreModel.LastTokenIndex(ids, mask).data<long>().ToArray();
            Assert.Equal(((JsonArray)c["pooled_index"]!).Select(v => v!.GetValue<long>()).ToArray(), pooledIndex);
            HfFixture.AssertClose(HfFixture.Floats(c["token_scores"]!), model.TokenScores(ids, mask, positions), compare, what + " token_scores");
            HfFixture.AssertClose(HfFixture.Floats(c["scores"]!), model.Forward(ids, mask, positions), null, what + " scores");
        }
    }

    [Theory]
    [InlineData("gpt2_tiny")]
    [InlineData("llama_tiny_gqa")]
    [InlineData("qwen2_tiny_tied")]
    [InlineData("llama_reward_tiny")]
    public void Saved_keys_are_exactly_what_hf_save_pretrained_writes(string name)
    {
        var fx = new HfFixture(name);
        var (config, _) = HuggingFaceCheckpoint.Read(fx.Dir);
        bool score = HuggingFaceCheckpoint.IsScoreModel(fx.Dir);
        using nn.Module model = score ? HuggingFaceCheckpoint.LoadScoreModel(fx.Dir) : HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        var ours = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var keys = HfWeightMap.ToHf(config, ours, score).Select(kv => kv.Key).OrderBy(k => k, StringComparer.Ordinal);
        var expected = ((JsonArray)fx.Expected["saved_keys"]!).Select(k => k!.GetValue<string>()).OrderBy(k => k, StringComparer.Ordinal);
        Assert.Equal(expected, keys);
    }
}
