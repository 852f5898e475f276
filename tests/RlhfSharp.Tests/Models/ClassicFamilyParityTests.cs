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

    public static TheoryData<string> Cases => new() { "opt_tiny", "opt_tiny_proj", "neox_tiny_parallel", "neox_tiny_sequential", "gptj_tiny", "bloom_tiny", "rwkv_tiny" };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_hidden_states_and_logprobs_match_hf_unpadded_and_left_padded(string name) => HfParity.Forward(new HfFixture(name, Set), name);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kv_cache_step_logits_match_hf_and_a_full_forward(string name) => HfParity.KvCacheStepLogits(new HfFixture(name, Set), name);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_equal_hf_generate_single_and_left_padded_batch(string name) => HfParity.GreedyTokens(new HfFixture(name, Set));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_without_a_cache_equal_hf(string name) => HfParity.GreedyTokensWithoutCache(new HfFixture(name, Set));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Saved_folder_has_exactly_hf_keys_and_reloads_bit_identical(string name) => HfParity.SaveRoundTrip(new HfFixture(name, Set), name, Path.Combine(tmp, name));

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
        Assert.True(HfParity.Same(rm.Forward(ids, mask), reloaded.Forward(ids, mask)));
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
        using (no_grad()) Assert.True(HfParity.Same(before, model.Forward(ids)), "B = 0: the adapted model starts as the base");
        // A step on the adapters moves the output; the base weights are frozen.
        var loss = model.Forward(ids).log_softmax(-1).select(2, 3).sum();
        loss.backward();
        Assert.All(model.named_parameters(), p => Assert.Equal(p.name.Contains("_lora."), p.parameter.requires_grad));
        Assert.All(model.named_parameters().Where(p => p.name.EndsWith("lora_B")),
            p => Assert.True(p.parameter.grad is { } g && g.abs().sum().item<float>() > 0, $"{p.name} gets no gradient"));
    }
}
