using RlhfSharp.Checkpoints;
using RlhfSharp.Lora;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Lora;

/// <summary>
/// A saved adapter means to PEFT what it means here: the adapter folder merged by hand into the base's HF weights, as
/// PEFT's merge_and_unload does (W + lora_alpha / r · B·A on each targeted module, in HF's row order: BLOOM's and
/// GPT-NeoX's query_key_value interleaved per head, Phi-3's qkv_proj and gate_up_proj stacked), loads into a model
/// that computes what the adapted model computes. Our own merge is not used, so a layout error on either side shows.
/// </summary>
public sealed class HandMergedAdapterTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-handmerge-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Theory]
    [InlineData("hf-wave2", "opt_tiny_proj", null)]
    [InlineData("hf-wave2", "neox_tiny_parallel", null)]
    [InlineData("hf-wave2", "neox_tiny_sequential", null)]
    [InlineData("hf-wave2", "gptj_tiny", null)]
    [InlineData("hf-wave2", "bloom_tiny", null)]
    [InlineData("hf-wave2", "rwkv_tiny", null)]
    [InlineData("hf-wave3", "phi3_tiny", new[] { "qkv_proj", "gate_up_proj" })]
    [InlineData("hf-wave3", "gemma2_tiny", null)]
    [InlineData("hf-wave3", "qwen2moe_tiny", new[] { "q_proj", "v_proj", "o_proj" })]
    public void Adapter_merged_by_hand_into_hf_weights_computes_the_adapted_model(string set, string name, string[]? targets)
    {
        var fx = new HfFixture(name, set);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        manual_seed(3);
        var lora = new LoraConfig { R = 4, Alpha = 8, Dropout = 0, TargetModules = targets?.ToList() };
        LoraModel.Attach(model, lora);
        // B starts at 0; give it values so the merge changes every targeted weight.
        using (no_grad()) foreach (var (_, p) in model.named_parameters().Where(p => p.name.EndsWith("lora_B"))) p.normal_(0, 0.2);
        var ids = tensor(new long[] { 1, 5, 6, 7, 8, 9, 10, 11 }, [1, 8]);
        Tensor adapted;
        using (no_grad()) adapted = model.Forward(ids);

        string adapterDir = Path.Combine(tmp, "adapter");
        PeftAdapter.Save(model, adapterDir, fx.Dir);

        // PEFT's merge, written out: W += scaling · B·A for every base_model.model.<module>.lora_A/B pair.
        var weights = SafeTensors.Load(Path.Combine(fx.Dir, "model.safetensors"));
        var adapter = SafeTensors.Load(Path.Combine(adapterDir, PeftAdapter.WeightsFile));
        const string prefix = "base_model.model.", suffixA = ".lora_A.weight";
        var modules = adapter.Keys.Where(k => k.EndsWith(suffixA)).Select(k => k[prefix.Length..^suffixA.Length]).ToList();
        Assert.NotEmpty(modules);
        Assert.Equal(2 * modules.Count, adapter.Count);
        foreach (var m in modules)
        {
            Assert.True(weights.ContainsKey(m + ".weight"), $"{name}: the adapter names {m}, which the HF checkpoint does not have");
            var a = adapter[prefix + m + suffixA];
            var b = adapter[prefix + m + ".lora_B.weight"];
            Assert.Equal(lora.R, a.shape[0]);
            weights[m + ".weight"] = weights[m + ".weight"] + lora.Scaling * b.matmul(a);
        }
        string mergedDir = Path.Combine(tmp, "merged");
        Directory.CreateDirectory(mergedDir);
        File.Copy(Path.Combine(fx.Dir, "config.json"), Path.Combine(mergedDir, "config.json"));
        SafeTensors.Save(Path.Combine(mergedDir, "model.safetensors"), weights);

        using var merged = HuggingFaceCheckpoint.LoadCausalLM(mergedDir);
        using (no_grad())
        {
            var base_ = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
            Assert.False(HfParity.Same(base_.Forward(ids), adapted), $"{name}: the adapters change nothing, so the test could not fail");
            base_.Dispose();
            HfFixture.AssertClose(adapted, merged.Forward(ids), null, $"{name} adapted vs merged by hand", atol: 1e-5, rtol: 1e-4);
        }
    }
}
