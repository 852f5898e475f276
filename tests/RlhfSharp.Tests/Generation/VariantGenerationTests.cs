using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Generation;

/// <summary>Greedy generation of the fixtures/hf-wave3 families against HF <c>generate</c>: KV cache, no cache, left padding.</summary>
public class VariantGenerationTests
{
    public static readonly TheoryData<string> Cases = Models.VariantParityTests.Cases;

    static List<int[]> Prompts(JsonObject c)
    {
        var ids = HfFixture.IntRows(c["input_ids"]!);
        var mask = HfFixture.IntRows(c["attention_mask"]!);
        return ids.Select((row, i) => row.Where((_, j) => mask[i][j] == 1).Select(x => (int)x).ToArray()).ToList();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_with_the_kv_cache_equal_hf_single_and_left_padded(string name)
    {
        var fx = new HfFixture(name, "hf-wave3");
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        foreach (var c in fx.Cases("generate"))
        {
            var prompts = Prompts(c);
            var sampler = new Sampler(model) { PadId = 0, EosIds = [((JsonObject)c["generate_kwargs"]!)["eos_token_id"]!.GetValue<int>()] };
            var result = sampler.Generate(prompts, new SamplingOptions { Temperature = 0, MaxNewTokens = c["max_new_tokens"]!.GetValue<int>() });
            var expected = HfFixture.IntRows(c["new_tokens"]!);
            for (int i = 0; i < prompts.Count; i++)
                Assert.Equal(expected[i].Select(x => (int)x), result[i].NewIds);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_without_a_cache_equal_hf(string name)
    {
        var fx = new HfFixture(name, "hf-wave3");
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        using var _ = no_grad();
        foreach (var c in fx.Cases("generate"))
        {
            // Each unpadded prompt alone, recomputing everything at each step (the plain loop HF's generator checked against).
            var expected = HfFixture.IntRows(c["new_tokens"]!);
            var prompts = Prompts(c);
            for (int i = 0; i < prompts.Count; i++)
            {
                var seq = prompts[i].Select(x => (long)x).ToList();
                for (int s = 0; s < expected[i].Length; s++)
                {
                    using var scope = NewDisposeScope();
                    var logits = model.Forward(tensor(seq.ToArray(), [1, seq.Count]));
                    seq.Add(logits.select(1, seq.Count - 1).argmax(-1).item<long>());
                }
                Assert.Equal(expected[i], seq.Skip(prompts[i].Length).ToArray());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kv_cache_step_logits_match_hf_and_a_full_forward(string name)
    {
        var fx = new HfFixture(name, "hf-wave3");
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
}
