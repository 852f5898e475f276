using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Generation;

public class GenerationParityTests
{
    [Theory]
    [InlineData("gpt2_tiny")]
    [InlineData("llama_tiny_gqa")]
    [InlineData("qwen2_tiny_tied")]
    public void Greedy_tokens_equal_hf_generate_single_and_left_padded_batch(string name) => HfParity.GreedyTokens(new HfFixture(name));

    [Theory]
    [InlineData("gpt2_tiny")]
    [InlineData("llama_tiny_gqa")]
    [InlineData("qwen2_tiny_tied")]
    public void Kv_cache_step_logits_match_hf_and_a_full_forward(string name) => HfParity.KvCacheStepLogits(new HfFixture(name), name);

    static readonly int[] Stories260KGreedyOracle =
    [
        403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
        328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13, 438, 310,
    ];

    [Fact]
    public void Stories260K_greedy_from_bos_matches_the_llama2c_oracle_token_for_token()
    {
        using var model = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        var sampler = new Sampler(model) { EosIds = [] };
        var result = sampler.Generate([[1]], new SamplingOptions { Temperature = 0, MaxNewTokens = 64 });
        Assert.Equal(Stories260KGreedyOracle, result[0].NewIds);
    }

    [Fact]
    public void Stories260K_top5_logits_after_bos_match_the_reference()
    {
        using var model = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var _ = no_grad();
        var logits = model.Forward(tensor(new long[] { 1 }, [1, 1])).reshape(-1);
        var (values, indices) = logits.topk(5);
        Assert.Equal(new long[] { 403, 385, 410, 317, 407 }, indices.data<long>().ToArray());
        var expected = new[] { 17.0235f, 15.4062f, 13.1083f, 12.7692f, 12.4181f };
        var actual = values.data<float>().ToArray();
        for (int i = 0; i < 5; i++) Assert.InRange(actual[i], expected[i] - 1e-3f, expected[i] + 1e-3f);
    }
}
