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
    public void Greedy_tokens_equal_hf_generate_single_and_left_padded_batch(string name)
    {
        var fx = new HfFixture(name);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        foreach (var c in fx.Cases("generate"))
        {
            var ids = HfFixture.IntRows(c["input_ids"]!);
            var mask = HfFixture.IntRows(c["attention_mask"]!);
            var prompts = ids.Select((row, i) => row.Where((_, j) => mask[i][j] == 1).Select(x => (int)x).ToArray()).ToList();
            var sampler = new Sampler(model) { PadId = 0, EosIds = [((JsonObject)c["generate_kwargs"]!)["eos_token_id"]!.GetValue<int>()] };
            var result = sampler.Generate(prompts, new SamplingOptions { Temperature = 0, MaxNewTokens = c["max_new_tokens"]!.GetValue<int>() });
            var expected = HfFixture.IntRows(c["new_tokens"]!);
            for (int i = 0; i < prompts.Count; i++)
                Assert.Equal(expected[i].Select(x => (int)x), result[i].NewIds);
        }
    }

    [Theory]
    [InlineData("gpt2_tiny")]
    [InlineData("llama_tiny_gqa")]
    [InlineData("qwen2_tiny_tied")]
    public void Kv_cache_step_logits_match_hf_and_a_full_forward(string name)
    {
        var fx = new HfFixture(name);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        using var _ = no_grad();
        foreach (var c in fx.Cases("generate"))
        {
            using var scope = NewDisposeScope();
            var sequences = HfFixture.Ints(c["sequences"])!;
            var promptMask = HfFixture.Ints(c["attention_mask"])!;
            var stepLogits = HfFixture.Floats(c["step_logits"]!); // (steps, B, V)
            long b = sequences.shape[0], p = promptMask.shape[1], steps = stepLogits.shape[0];
            var fullMask = cat([promptMask, ones(b, steps, int64)], 1);
            var positions = Transformer.PositionsFromMask(fullMask);

            using var cache = new KvCache(model.Config, b, (int)(p + steps), float32, CPU);
            var logits = model.Forward(sequences.narrow(1, 0, p), promptMask, positions.narrow(1, 0, p), cache, lastOnly: true).squeeze(1);
            var fullForward = model.Forward(sequences.narrow(1, 0, p + steps - 1), fullMask.narrow(1, 0, p + steps - 1), positions.narrow(1, 0, p + steps - 1));
            for (long s = 0; s < steps; s++)
            {
                HfFixture.AssertClose(stepLogits[s], logits, null, $"{name}/{c["name"]} step {s} (KV cache vs HF)");
                HfFixture.AssertClose(fullForward.select(1, p - 1 + s), logits, null, $"{name}/{c["name"]} step {s} (KV cache vs full forward)");
                if (s + 1 < steps)
                    logits = model.Forward(sequences.narrow(1, p + s, 1), fullMask.narrow(1, 0, p + s + 1), positions.narrow(1, p + s, 1), cache, lastOnly: true).squeeze(1);
            }
        }
    }

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
