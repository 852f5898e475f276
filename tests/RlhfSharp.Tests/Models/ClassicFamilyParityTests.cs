using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// OPT, GPT-NeoX, GPT-J, BLOOM and RWKV-4 against HF transformers v4.44 (fixtures/hf-wave2): forward, KV-cache decoding
/// (RWKV: its recurrent state), greedy generation, the saved key set, score heads and PEFT's default LoRA targets, at the
/// fixture README's 1e-5 tolerance. RWKV's own checks are in RwkvParityTests.
/// </summary>
public sealed class ClassicFamilyParityTests : IDisposable
{
    const string Set = "hf-wave2";
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-classic-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public static TheoryData<string> Cases => new() { "opt_tiny", "opt_tiny_proj", "neox_tiny_parallel", "neox_tiny_sequential", "gptj_tiny", "bloom_tiny", "rwkv_tiny" };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_hidden_states_and_logprobs_match_hf_unpadded_and_left_padded(string name)
    {
        var fx = new HfFixture(name, Set);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        foreach (var c in fx.Cases("forward"))
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            string what = $"{name}/{c["name"]}";
            var ids = HfFixture.Ints(c["input_ids"])!;
            var mask = HfFixture.Ints(c["attention_mask"]);
            var positions = HfFixture.Ints(c["position_ids"]); // null for OPT and BLOOM: their positions come from the mask
            var compare = HfFixture.Ints(c["compare_mask"])!;
            var hidden = new List<Tensor>();
            var logits = model.Forward(ids, mask, positions, hiddenStates: hidden);

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

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kv_cache_step_logits_match_hf_and_a_full_forward(string name)
    {
        var fx = new HfFixture(name, Set);
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

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_equal_hf_generate_single_and_left_padded_batch(string name)
    {
        var fx = new HfFixture(name, Set);
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
    [MemberData(nameof(Cases))]
    public void Saved_folder_has_exactly_hf_keys_and_reloads_bit_identical(string name)
    {
        var fx = new HfFixture(name, Set);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        string dir = Path.Combine(tmp, name);
        HuggingFaceCheckpoint.Save(model, dir);
        var (config, saved) = HuggingFaceCheckpoint.Read(dir);
        var expected = ((JsonArray)fx.Expected["saved_keys"]!).Select(k => k!.GetValue<string>()).OrderBy(k => k, StringComparer.Ordinal);
        Assert.Equal(expected, saved.Keys.OrderBy(k => k, StringComparer.Ordinal));
        var (_, original) = HuggingFaceCheckpoint.Read(fx.Dir);
        foreach (var (key, t) in original) Assert.True(Same(t, saved[key]), $"{name}: '{key}' changed on save");
        string Json(TransformerConfig c) => c.ToJson("x").ToJsonString();
        Assert.Equal(Json(model.Config), Json(config));
        var arch = ((JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!["architectures"]!)[0]!.GetValue<string>();
        Assert.Equal(fx.Expected["model_class"]!.GetValue<string>(), arch);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Parameter_count_equals_the_numel_of_hf_weights(string name)
    {
        var fx = new HfFixture(name, Set);
        var (config, weights) = HuggingFaceCheckpoint.Read(fx.Dir);
        // The file leaves out a tied head, which ParameterCount counts once with the embedding too.
        Assert.Equal(weights.Values.Sum(t => t.numel()), config.ParameterCount());
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        Assert.Equal(model.parameters().Sum(p => p.numel()), config.ParameterCount());
    }

    [Theory]
    [InlineData("opt_tiny_proj", "OPTForSequenceClassification")]
    [InlineData("neox_tiny_parallel", "GPTNeoXForSequenceClassification")]
    [InlineData("gptj_tiny", "GPTJForSequenceClassification")]
    [InlineData("bloom_tiny", "BloomForSequenceClassification")]
    [InlineData("rwkv_tiny", "RwkvForSequenceClassification")] // not in transformers v4.44: the same layout, rwkv.* + score.weight
    public void Score_model_round_trips_with_hf_sequence_classification_keys(string name, string architecture)
    {
        var fx = new HfFixture(name, Set);
        manual_seed(3);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(fx.Dir, allowNewHead: true);
        string dir = Path.Combine(tmp, name + "-rm");
        HuggingFaceCheckpoint.Save(rm, dir);
        Assert.True(HuggingFaceCheckpoint.IsScoreModel(dir));
        var arch = ((JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!["architectures"]!)[0]!.GetValue<string>();
        Assert.Equal(architecture, arch);
        // HF's *ForSequenceClassification: the causal LM's body keys, no LM head, and score.weight [labels, head input].
        var body = ((JsonArray)fx.Expected["saved_keys"]!).Select(k => k!.GetValue<string>()).Where(k => k is not ("lm_head.weight" or "lm_head.bias" or "embed_out.weight" or "head.weight"));
        var (_, saved) = HuggingFaceCheckpoint.Read(dir);
        Assert.Equal(body.Append("score.weight").OrderBy(k => k, StringComparer.Ordinal), saved.Keys.OrderBy(k => k, StringComparer.Ordinal));
        Assert.Equal([1L, rm.model.OutputSize], saved["score.weight"].shape);
        using var reloaded = HuggingFaceCheckpoint.LoadScoreModel(dir);
        var ids = tensor(new long[] { 0, 0, 5, 6, 7, 3, 4, 5, 6, 7 }, [2, 5]);
        var mask = ids.ne(0).to(int64);
        using var _ = no_grad();
        Assert.True(Same(rm.Forward(ids, mask), reloaded.Forward(ids, mask)));
    }

    [Theory]
    [InlineData("opt_tiny", new[] { "q_proj", "v_proj" })]
    [InlineData("neox_tiny_parallel", new[] { "query_key_value" })]
    [InlineData("gptj_tiny", new[] { "q_proj", "v_proj" })]
    [InlineData("bloom_tiny", new[] { "query_key_value" })]
    public void Lora_takes_pefts_default_targets_and_starts_as_the_base_model(string name, string[] targets)
    {
        var fx = new HfFixture(name, Set);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        Assert.Equal(targets, LoraModel.DefaultTargets(model.Config));
        var ids = tensor(new long[] { 1, 5, 6, 7, 8, 9 }, [1, 6]);
        Tensor before;
        using (no_grad()) before = model.Forward(ids);
        LoraModel.Attach(model, new LoraConfig { R = 4, Alpha = 8, Dropout = 0 });
        // PEFT's names: one A/B pair per targeted HF module of every layer.
        var keys = PeftAdapter.StateDict(model).Select(kv => kv.Key).ToList();
        Assert.Equal(model.Config.NumLayers * targets.Length * 2, keys.Count);
        Assert.All(keys, k => Assert.Contains(targets, t => k.Contains("." + t + ".lora_")));
        using (no_grad()) Assert.True(Same(before, model.Forward(ids)), "B = 0: the adapted model starts as the base");
        // A step on the adapters moves the output; the base weights are frozen.
        var loss = model.Forward(ids).log_softmax(-1).select(2, 3).sum();
        loss.backward();
        Assert.All(model.named_parameters(), p => Assert.Equal(p.name.Contains("_lora."), p.parameter.requires_grad));
        Assert.All(model.named_parameters().Where(p => p.name.EndsWith("lora_B")),
            p => Assert.True(p.parameter.grad is { } g && g.abs().sum().item<float>() > 0, $"{p.name} gets no gradient"));
    }
}
