using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// What RWKV-4 adds to the shared family checks (ClassicFamilyParityTests runs those on rwkv_tiny too): the recurrent state
/// against HF's final state, greedy decoding with and without the state, left padding that changes nothing, inference
/// rescaling and ln_out's fixed eps (fixtures/rwkv-rescale, from a PyTorch re-implementation that reproduces transformers),
/// and PEFT's default LoRA targets. Tolerance: the fixture README's 1e-5 + 1e-5·|b|.
/// </summary>
public sealed class RwkvParityTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-rwkv-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static readonly HfFixture Fx = new("rwkv_tiny", "hf-wave2");
    static JsonObject Generate(string name) => Fx.Cases("generate").Single(c => c["name"]!.GetValue<string>() == name);

    [Fact]
    public void Final_state_after_a_prefill_matches_hfs_five_tensors()
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(Fx.Dir);
        using var _ = no_grad();
        var c = Fx.Cases("forward").Single();
        var ids = HfFixture.Ints(c["input_ids"])!;
        using var cache = new KvCache(model.Config, ids.shape[0], (int)ids.shape[1], float32, CPU);
        var logits = model.Forward(ids, null, null, cache);
        HfFixture.AssertClose(HfFixture.Floats(c["logits"]!), logits, null, "logits with the state");
        var expected = (JsonArray)c["final_state"]!;
        var state = cache.Recurrent!.ToHfLayout();
        Assert.Equal(5, expected.Count);
        for (int i = 0; i < 5; i++) HfFixture.AssertClose(HfFixture.Floats(expected[i]!), state[i], null, $"final_state[{i}]");
    }

    [Fact]
    public void Greedy_without_the_state_recomputes_hfs_tokens_and_step_logits()
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(Fx.Dir);
        using var _ = no_grad();
        foreach (var name in new[] { "greedy_single", "greedy_batch" })
        {
            var c = Generate(name);
            var sequence = HfFixture.Ints(c["input_ids"])!;
            var stepLogits = HfFixture.Floats(c["step_logits"]!);
            for (long s = 0; s < stepLogits.shape[0]; s++)
            {
                var logits = model.Forward(sequence).select(1, -1); // no cache: the whole sequence again
                HfFixture.AssertClose(stepLogits[s], logits, null, $"{name} step {s}");
                sequence = cat([sequence, logits.argmax(-1, keepdim: true)], 1);
            }
            Assert.Equal(HfFixture.Ints(c["sequences"])!.data<long>().ToArray(), sequence.data<long>().ToArray());
        }
    }

    [Fact]
    public void Left_padded_prompts_generate_what_each_row_generates_alone()
    {
        // HF v4.44 has no correct padded RWKV batch (it ignores the mask; its stateful step breaks at batch > 1): the
        // reference is each row's own HF generation. Prompts of 5 and 6 tokens, so the first row is left-padded.
        using var model = HuggingFaceCheckpoint.LoadCausalLM(Fx.Dir);
        var single = Generate("greedy_single");
        var batch = Generate("greedy_batch");
        var prompts = HfFixture.IntRows(single["input_ids"]!).Concat(HfFixture.IntRows(batch["input_ids"]!)).Select(r => r.Select(x => (int)x).ToArray()).ToList();
        var expected = HfFixture.IntRows(single["new_tokens"]!).Concat(HfFixture.IntRows(batch["new_tokens"]!)).ToList();
        var sampler = new Sampler(model) { PadId = 0, EosIds = [2] };
        var result = sampler.Generate(prompts, new SamplingOptions { Temperature = 0, MaxNewTokens = 5 });
        for (int i = 0; i < prompts.Count; i++) Assert.Equal(expected[i].Select(x => (int)x), result[i].NewIds);

        // The padded row's step logits through the state equal HF's unpadded ones.
        using var _ = no_grad();
        var (ids, mask) = sampler.LeftPad(prompts);
        var stepLogits = HfFixture.Floats(single["step_logits"]!); // (5, 1, V)
        using var cache = new KvCache(model.Config, ids.shape[0], 16, float32, CPU);
        var logits = model.Forward(ids, mask, null, cache, lastOnly: true).squeeze(1);
        var newTokens = HfFixture.Ints(single["new_tokens"])!;
        for (long s = 0; s < stepLogits.shape[0]; s++)
        {
            HfFixture.AssertClose(stepLogits[s], logits.narrow(0, 0, 1), null, $"left-padded row, step {s}");
            var next = cat([newTokens.narrow(1, s, 1), HfFixture.Ints(batch["sequences"])!.narrow(1, 6 + s, 1)], 0);
            mask = cat([mask, ones(3, 1, int64)], 1);
            logits = model.Forward(next, mask, null, cache, lastOnly: true).squeeze(1);
        }
    }

    [Fact]
    public void A_padded_training_forward_equals_the_unpadded_rows_at_real_tokens()
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(Fx.Dir);
        using var _ = no_grad();
        var c = Fx.Cases("forward").Single();
        var ids = HfFixture.Ints(c["input_ids"])!; // (2, 7)
        var expected = HfFixture.Floats(c["logits"]!);
        // Row 0 left-padded by 3, row 1 right-padded by 3, as rollouts and SFT batches are.
        var padded = cat([cat([zeros(1, 3, int64), ids.narrow(0, 0, 1)], 1), cat([ids.narrow(0, 1, 1), zeros(1, 3, int64)], 1)], 0);
        var mask = padded.ne(0).to(int64);
        mask[1, 7..] = zeros(3, int64); // token ids are ≥ 3, so ne(0) marks exactly the pads; made explicit for the right pad
        var logits = model.Forward(padded, mask);
        HfFixture.AssertClose(expected.narrow(0, 0, 1), logits.narrow(0, 0, 1).narrow(1, 3, 7), null, "left-padded row");
        HfFixture.AssertClose(expected.narrow(0, 1, 1), logits.narrow(0, 1, 1).narrow(1, 0, 7), null, "right-padded row");
        // Without the mask the pads count as tokens, as in HF: the left-padded row changes.
        var unmasked = model.Forward(padded).narrow(0, 0, 1).narrow(1, 3, 7);
        Assert.True((unmasked - expected.narrow(0, 0, 1)).abs().max().item<float>() > 1e-3, "pads without a mask should enter the state");
    }

    [Theory]
    [InlineData("rescale_every_1")]
    [InlineData("rescale_every_1_eps_1e-6")]
    public void Inference_rescaling_and_ln_outs_fixed_eps_match_the_reference(string name)
    {
        var reference = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "rwkv-rescale", "expected.json")))!;
        var c = ((JsonArray)reference["cases"]!).Select(x => (JsonObject)x!).Single(x => x["name"]!.GetValue<string>() == name);
        string dir = Path.Combine(tmp, name);
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(Fx.Dir, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Fx.Dir, "config.json")))!;
        foreach (var (key, value) in (JsonObject)c["config_changes"]!) config[key] = value!.DeepClone();
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());

        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir); // eval mode, as from_pretrained
        using var _ = no_grad();
        var ids = HfFixture.Ints(c["input_ids"])!;
        var hidden = new List<Tensor>();
        var logits = model.Forward(ids, hiddenStates: hidden);
        HfFixture.AssertClose(HfFixture.Floats(c["logits"]!), logits, null, name + " logits");
        var expectedHidden = (JsonArray)c["hidden_states"]!;
        Assert.Equal(expectedHidden.Count, hidden.Count);
        for (int i = 0; i < hidden.Count; i++) HfFixture.AssertClose(HfFixture.Floats(expectedHidden[i]!), hidden[i], null, $"{name} hidden_states[{i}]");

        // Decoding through the state rescales the same way.
        using var cache = new KvCache(model.Config, ids.shape[0], (int)ids.shape[1], float32, CPU);
        var stepwise = Enumerable.Range(0, (int)ids.shape[1]).Select(t => model.Forward(ids.narrow(1, t, 1), null, null, cache)).ToList();
        HfFixture.AssertClose(HfFixture.Floats(c["logits"]!), cat(stepwise, 1), null, name + " token by token");

        // Train mode runs unscaled, as HF's training forward: for rescale_every 1 that is rwkv_tiny's own logits
        // (its rescale_every 6 never applies to 2 blocks).
        if (!name.Contains("eps"))
        {
            model.train();
            HfFixture.AssertClose(HfFixture.Floats(Fx.Cases("forward").Single()["logits"]!), model.Forward(ids), null, name + " train mode");
        }
    }

    [Fact]
    public void Lora_takes_pefts_key_value_receptance_in_both_mixes_and_merges_back()
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(Fx.Dir);
        Assert.Equal(["key", "value", "receptance"], LoraModel.DefaultTargets(model.Config));
        var ids = tensor(new long[] { 1, 5, 6, 7, 8, 9 }, [1, 6]);
        Tensor before;
        using (no_grad()) before = model.Forward(ids);
        LoraModel.Attach(model, new LoraConfig { R = 4, Alpha = 8, Dropout = 0 });
        var keys = PeftAdapter.StateDict(model).Select(kv => kv.Key).ToList();
        // PEFT matches module names ending in ".key" etc.: the time mix's and the channel mix's, 6 modules per block.
        string[] modules = ["attention.key", "attention.value", "attention.receptance", "feed_forward.key", "feed_forward.value", "feed_forward.receptance"];
        Assert.Equal(model.Config.NumLayers * modules.Length * 2, keys.Count);
        foreach (var m in modules) Assert.Contains(keys, k => k.Contains($"rwkv.blocks.1.{m}.lora_A"));
        using (no_grad()) Assert.True(before.eq(model.Forward(ids)).all().item<bool>(), "B = 0: the adapted model starts as the base");

        var loss = model.Forward(ids).log_softmax(-1).select(2, 3).sum();
        loss.backward();
        Assert.All(model.named_parameters(), p => Assert.Equal(p.name.Contains("_lora."), p.parameter.requires_grad));
        Assert.All(model.named_parameters().Where(p => p.name.EndsWith("lora_B")),
            p => Assert.True(p.parameter.grad is { } g && g.abs().sum().item<float>() > 0, $"{p.name} gets no gradient"));

        // Saved as a PEFT folder and merged into a fresh base: the same model.
        using (no_grad()) foreach (var p in model.named_parameters().Where(p => p.name.EndsWith("lora_B"))) p.parameter.normal_(0, 0.1);
        string adapter = Path.Combine(tmp, "adapter");
        PeftAdapter.Save(model, adapter, Fx.Dir);
        using var merged = PeftAdapter.LoadCausalLM(adapter);
        using (no_grad()) HfFixture.AssertClose(model.Forward(ids), merged.Forward(ids), null, "merged vs adapters");
    }

    [Fact]
    public void The_state_does_not_grow_with_the_length()
    {
        var config = HuggingFaceCheckpoint.Read(Fx.Dir).Config;
        Assert.Equal(MemoryBudget.KvCacheBytes(config, float32, 2, 10), MemoryBudget.KvCacheBytes(config, float32, 2, 1000));
        // 2 shifts (hidden) and 3 WKV sums (attention width, float32) per block and row.
        Assert.Equal(2L * config.NumLayers * (2 * 32 + 3 * 32) * 4, MemoryBudget.KvCacheBytes(config, float32, 2, 10));
    }
}
