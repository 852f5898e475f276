using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Lora;
using RlhfSharp.Models.T5;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Lora;

/// <summary>
/// LoRA on T5 with PEFT's default targets (q, v) and PEFT's file layout. The adapter in fixtures/hf-t5/lora/qv and the
/// merged weights in qv_merged are written by fixtures/hf-t5/lora/generate_lora.py (PyTorch 1.13, PEFT's key names,
/// matching rule and merge W + (α/r)·B·A), so the expected logits are those of an independently merged model.
/// </summary>
public sealed class T5LoraTests
{
    static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5");
    static string BaseDir => Path.Combine(Fixtures, "t5v11_tiny_gated");
    static string AdapterDir => Path.Combine(Fixtures, "lora", "qv");
    static string MergedDir => Path.Combine(Fixtures, "lora", "qv_merged");

    /// <summary>The teacher-forced logits of the fixture's forward case (padded encoder row included).</summary>
    static Tensor Logits(T5ForConditionalGeneration model)
    {
        var f = JsonNode.Parse(File.ReadAllText(Path.Combine(BaseDir, "expected.json")))!["forward"]![0]!;
        using var _ = no_grad();
        return model.Forward(HfFixture.Ints(f["input_ids"])!, HfFixture.Ints(f["attention_mask"])!,
            HfFixture.Ints(f["decoder_input_ids"])!, HfFixture.Ints(f["decoder_attention_mask"])!);
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        double worst = (expected - actual).abs().max().item<float>();
        double scale = expected.abs().max().item<float>();
        Assert.True(worst <= 1e-5 + 1e-5 * scale, $"{what}: max |diff| {worst:E2}");
    }

    [Fact]
    public void A_peft_t5_adapter_gives_the_logits_of_the_python_merged_weights_attached_or_merged()
    {
        using var scope = NewDisposeScope();
        var expected = Logits(T5Checkpoint.Load(MergedDir));
        var attached = T5Checkpoint.Load(BaseDir);
        T5Lora.Load(attached, AdapterDir);
        AssertClose(expected, Logits(attached), "adapters attached");
        var merged = T5Checkpoint.Load(BaseDir);
        T5Lora.Merge(merged, AdapterDir);
        AssertClose(expected, Logits(merged), "adapters merged");
        // The adapter folder names its base relatively; loading it as a model merges it.
        AssertClose(expected, Logits(T5Lora.LoadMerged(AdapterDir)), "adapter folder loaded");
        // Switched off, the adapters leave exactly the base model.
        var base_ = Logits(T5Checkpoint.Load(BaseDir));
        Assert.True(!base_.allclose(expected, 1e-3, 1e-3), "the adapter must change the logits for this test to mean anything");
        using (LoraModel.AdaptersOff(attached)) Assert.True(Same(base_, Logits(attached)), "adapters off = base");
    }

    [Fact]
    public void Default_targets_are_pefts_q_and_v_and_save_writes_pefts_keys_and_loads_back()
    {
        using var scope = NewDisposeScope();
        var model = T5Checkpoint.Load(BaseDir);
        manual_seed(3);
        long count = T5Lora.Attach(model, new LoraConfig { R = 4, Alpha = 8, Dropout = 0 });
        // PEFT's modules for ["q", "v"], listed by the generator: self- and cross-attention q and v of every block.
        var pythonModules = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "lora", "targeted_modules.json")))!.AsArray().Select(n => (string)n!).ToList();
        Assert.Equal(16, pythonModules.Count);
        var keys = PeftAdapter.StateDict(model).Select(kv => kv.Key).ToList();
        var pythonKeys = SafeTensors.Load(Path.Combine(AdapterDir, "adapter_model.safetensors")).Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        Assert.Equal(pythonKeys, keys);
        Assert.Equal(pythonModules.Count * 4 * (32 + 32), count);
        Assert.All(model.named_parameters().Where(p => !p.name.Contains("_lora")), p => Assert.False(p.parameter.requires_grad, p.name));

        // Non-zero B so the round trip is not trivially the base model.
        using (no_grad()) foreach (var (_, adapter) in LoraModel.Adapters(model)) foreach (var s in adapter.Slices) s.Pair.lora_B.normal_(0, 0.2);
        string dir = Path.Combine(Path.GetTempPath(), $"t5lora-{Guid.NewGuid():N}");
        try
        {
            T5Lora.Save(model, dir, BaseDir);
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!;
            Assert.Equal("SEQ_2_SEQ_LM", (string)config["task_type"]!);
            Assert.Equal(["q", "v"], config["target_modules"]!.AsArray().Select(n => (string)n!));
            var reloaded = T5Checkpoint.Load(BaseDir);
            T5Lora.Load(reloaded, dir);
            Assert.True(Same(Logits(model), Logits(reloaded)), "saved and reloaded adapters give the same logits");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
        Assert.Throws<RlhfException>(() => T5Lora.Attach(T5Checkpoint.Load(BaseDir), new LoraConfig { TargetModules = ["q_proj"] }));
    }

    static (int[] Prompt, int[] Target) Row0()
    {
        var f = JsonNode.Parse(File.ReadAllText(Path.Combine(BaseDir, "expected.json")))!["forward"]![0]!;
        var prompt = HfFixture.IntRows(f["input_ids"]!)[0].Select(x => (int)x).ToArray();
        var target = HfFixture.IntRows(f["decoder_input_ids"]!)[0].Skip(1).Select(x => (int)x).ToArray();
        return (prompt, target);
    }

    static Dictionary<string, Tensor> BaseWeights(T5ForConditionalGeneration m) =>
        m.named_parameters().Where(p => !p.name.Contains("_lora")).ToDictionary(p => p.name, p => p.parameter.detach().clone());

    [Fact]
    public void Lora_sft_on_t5_trains_only_the_adapters_and_lowers_the_target_loss()
    {
        using var scope = NewDisposeScope();
        var (prompt, target) = Row0();
        var examples = new List<Seq2SeqExample> { new(prompt, target), new(prompt[..4], target[..3]) };
        var model = T5Checkpoint.Load(BaseDir);
        var before = BaseWeights(model);
        manual_seed(1);
        T5Lora.Attach(model, new LoraConfig { R = 4, Alpha = 16, Dropout = 0 });
        var config = new SftConfig { BatchSize = 2, Epochs = 10, SaveEvery = 0, Optimizer = new SftConfig().Optimizer with { LearningRate = 3e-2 } };
        var trainer = new Seq2SeqSftTrainer(model, config, padId: 0);
        double start = trainer.Evaluate(examples)["eval_loss"];
        double end = trainer.Train(examples, examples)["eval_loss"];
        Assert.True(end < start - 0.5, $"eval_loss {start:F3} → {end:F3}");
        foreach (var (name, p) in model.named_parameters().Where(p => !p.name.Contains("_lora")))
            Assert.True(Same(before[name], p), $"{name} changed under LoRA");
    }

    [Fact]
    public void Lora_dpo_on_t5_starts_at_ln2_against_the_adapters_off_reference_and_raises_the_margin()
    {
        using var scope = NewDisposeScope();
        var (prompt, target) = Row0();
        var pairs = new List<Seq2SeqPreference> { new(prompt, target, [.. target.Reverse()]), new(prompt[..4], target[..3], [63, 63, 63]) };
        var policy = T5Checkpoint.Load(BaseDir);
        var before = BaseWeights(policy);
        manual_seed(1);
        var lora = new LoraConfig { R = 4, Alpha = 16, Dropout = 0.05 };
        T5Lora.Attach(policy, lora);
        var config = new DpoConfig { BatchSize = 2, Epochs = 8, SaveEvery = 0, Beta = 0.5, Lora = lora, Optimizer = new DpoConfig().Optimizer with { LearningRate = 3e-2 } };
        var trainer = new Seq2SeqDpoTrainer(policy, policy, config, padId: 0);
        var start = trainer.Evaluate(pairs);
        Assert.Equal(Math.Log(2), start["eval_loss"], 5); // B = 0 at first: policy = reference, −log σ(0)
        var after = trainer.Train(pairs, pairs);
        Assert.True(after["eval_margin"] > 0.5, $"margin {after["eval_margin"]:F3}");
        Assert.Equal(1.0, after["eval_accuracy"]);
        foreach (var (name, p) in policy.named_parameters().Where(p => !p.name.Contains("_lora")))
            Assert.True(Same(before[name], p), $"{name} changed under LoRA");
        Assert.All(LoraModel.Adapters(policy), a => Assert.Equal(0, a.Adapter.Dropout)); // TRL disable_dropout
    }
}
