using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests;

/// <summary>
/// The parity checks of a causal LM against HF transformers v4.44's goldens, for any fixture set (fixtures/hf: GPT-2,
/// LLaMA, Qwen2; hf-wave2: OPT, GPT-NeoX, GPT-J, BLOOM; hf-wave3: the LLaMA variants), at the fixture README's 1e-5
/// tolerance. Each family's test class names its cases and calls these.
/// </summary>
public static class HfParity
{
    /// <summary>Logits, every hidden state and the token log-probs of each "forward" case (unpadded and left-padded), and no NaN.</summary>
    public static void Forward(HfFixture fx, string name)
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        foreach (var c in fx.Cases("forward"))
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            string what = $"{name}/{c["name"]}";
            var ids = HfFixture.Ints(c["input_ids"])!;
            var compare = HfFixture.Ints(c["compare_mask"])!;
            var hidden = new List<Tensor>();
            // position_ids is null for OPT and BLOOM: their positions come from the mask.
            var logits = model.Forward(ids, HfFixture.Ints(c["attention_mask"]), HfFixture.Ints(c["position_ids"]), hiddenStates: hidden);

            HfFixture.AssertClose(HfFixture.Floats(c["logits"]!), logits, compare, what + " logits");
            var expectedHidden = (JsonArray)c["hidden_states"]!;
            Assert.Equal(expectedHidden.Count, hidden.Count);
            for (int i = 0; i < hidden.Count; i++)
                HfFixture.AssertClose(HfFixture.Floats(expectedHidden[i]!), hidden[i], compare, $"{what} hidden_states[{i}]");
            var logprobs = logits.narrow(1, 0, ids.shape[1] - 1).log_softmax(-1)
                .gather(2, ids.narrow(1, 1, ids.shape[1] - 1).unsqueeze(-1)).squeeze(-1);
            HfFixture.AssertClose(HfFixture.Floats(c["token_logprobs"]!), logprobs, HfFixture.Ints(c["token_logprobs_mask"]), what + " token_logprobs");
            Assert.False(logits.isnan().any().item<bool>(), what + ": NaN in logits (padded rows must stay finite)");
        }
    }

    /// <summary>Each "generate" case's step logits through the KV cache, against HF's and against a full forward.</summary>
    public static void KvCacheStepLogits(HfFixture fx, string name)
    {
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

    /// <summary>Each "generate" case's prompts without their padding.</summary>
    static List<int[]> Prompts(JsonObject c)
    {
        var ids = HfFixture.IntRows(c["input_ids"]!);
        var mask = HfFixture.IntRows(c["attention_mask"]!);
        return ids.Select((row, i) => row.Where((_, j) => mask[i][j] == 1).Select(x => (int)x).ToArray()).ToList();
    }

    /// <summary>Greedy tokens of <see cref="Sampler"/> (KV cache; one prompt alone and a left-padded batch) equal HF <c>generate</c>'s.</summary>
    public static void GreedyTokens(HfFixture fx)
    {
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

    /// <summary>Greedy tokens of each unpadded prompt alone, recomputing everything at each step (the plain loop HF's generator checked against).</summary>
    public static void GreedyTokensWithoutCache(HfFixture fx)
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        using var _ = no_grad();
        foreach (var c in fx.Cases("generate"))
        {
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

    /// <summary>
    /// Saving writes exactly HF's key set, every tensor unchanged, the same config and HF's architecture name; the folder
    /// reloads to bit-identical logits.
    /// </summary>
    public static void SaveRoundTrip(HfFixture fx, string name, string dir)
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        HuggingFaceCheckpoint.Save(model, dir);
        var (config, saved) = HuggingFaceCheckpoint.Read(dir);
        var expected = ((JsonArray)fx.Expected["saved_keys"]!).Select(k => k!.GetValue<string>()).OrderBy(k => k, StringComparer.Ordinal);
        Assert.Equal(expected, saved.Keys.OrderBy(k => k, StringComparer.Ordinal));
        var (original, hf) = HuggingFaceCheckpoint.Read(fx.Dir);
        foreach (var (key, t) in hf) Assert.True(Same(t, saved[key]), $"{name}: '{key}' changed on save");
        // Records holding lists compare them by reference: compare what the config writes.
        static string Json(TransformerConfig c) => c.ToJson("x").ToJsonString();
        Assert.Equal(Json(original), Json(config));
        Assert.Equal(Json(model.Config), Json(config));
        var arch = ((JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!["architectures"]!)[0]!.GetValue<string>();
        Assert.Equal(fx.Expected["model_class"]!.GetValue<string>(), arch);

        using var reloaded = HuggingFaceCheckpoint.LoadCausalLM(dir);
        using var _ = no_grad();
        var ids = HfFixture.Ints(fx.Cases("forward").First()["input_ids"])!;
        Assert.True(Same(model.Forward(ids), reloaded.Forward(ids)), $"{name}: logits differ after save and reload");
    }

    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
