using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Lora;

/// <summary>
/// LoRA on our fused projections against PEFT's semantics on HF's separate modules, PEFT's file format, merging,
/// and the adapters-off reference.
/// </summary>
public sealed class LoraAdapterTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-lora-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf", name);

    static Tensor Ids(int vocab) => tensor(new long[] { 5, 17, 33, 8, 60, 21, 9, 44, 12, 30, 7, 3, 55, 19 }.Select(x => x % (vocab - 4) + 3).ToArray(), [2, 7]);

    static bool Identical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>Random A and B (B starts at zero, which would hide every mapping mistake).</summary>
    static void Randomize(nn.Module model, ulong seed)
    {
        var g = new TorchSharp.torch.Generator(seed);
        using var _ = no_grad();
        foreach (var (_, p) in PeftAdapter.StateDict(model)) p.copy_(randn(p.shape, generator: g) * 0.2);
    }

    /// <summary>
    /// The independent route: PEFT's update applied to HF's own tensors, module by module by key name
    /// (W += (α/r)·B·A; for GPT-2's Conv1D, stored [in, out], the transpose, as PEFT does under fan_in_fan_out), then
    /// loaded through the ordinary checkpoint path that fuses q/k/v and gate/up.
    /// </summary>
    static string EditHfWeights(string baseDir, string adapterDir, double scaling, string outDir)
    {
        var (config, hf) = HuggingFaceCheckpoint.Read(baseDir);
        var adapter = SafeTensors.Load(Path.Combine(adapterDir, PeftAdapter.WeightsFile));
        foreach (var key in adapter.Keys.Where(k => k.EndsWith(".lora_A.weight")))
        {
            string module = key["base_model.model.".Length..^".lora_A.weight".Length];
            var delta = adapter[module.Insert(0, "base_model.model.") + ".lora_B.weight"].matmul(adapter[key]) * scaling;
            hf[module + ".weight"] = hf[module + ".weight"] + (config.ModelType == "gpt2" ? delta.t() : delta);
        }
        Directory.CreateDirectory(outDir);
        File.Copy(Path.Combine(baseDir, "config.json"), Path.Combine(outDir, "config.json"));
        SafeTensors.Save(Path.Combine(outDir, "model.safetensors"), hf);
        return outDir;
    }

    [Theory]
    [InlineData("llama_tiny_gqa", new[] { "q_proj", "v_proj" })]                 // fused q/k/v, GQA: k and v narrower than q
    [InlineData("llama_tiny_gqa", new[] { "k_proj", "gate_proj", "down_proj" })] // middle slice, fused gate/up, unfused
    [InlineData("llama_tiny_gqa", new[] { "all-linear" })]
    [InlineData("qwen2_tiny_tied", new[] { "q_proj", "v_proj", "o_proj", "up_proj" })]
    [InlineData("gpt2_tiny", new[] { "c_attn", "c_proj" })]                      // Conv1D; c_proj matches attn.c_proj and mlp.c_proj
    public void Adapter_on_fused_projections_computes_what_PEFT_computes_on_HF_modules(string fixture, string[] targets)
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(Fixture(fixture));
        var config = new LoraConfig { R = 4, Alpha = 8, Dropout = 0.0, TargetModules = [.. targets] };
        LoraModel.Attach(model, config);
        Randomize(model, 11);
        string adapterDir = Path.Combine(tmp, "adapter");
        PeftAdapter.Save(model, adapterDir, Fixture(fixture));
        using var edited = HuggingFaceCheckpoint.LoadCausalLM(EditHfWeights(Fixture(fixture), adapterDir, config.Scaling, Path.Combine(tmp, "edited")));
        using var untouched = HuggingFaceCheckpoint.LoadCausalLM(Fixture(fixture));

        using var _ = no_grad();
        var ids = Ids(model.Config.VocabSize);
        var withAdapters = model.Forward(ids);
        HfFixture.AssertClose(edited.Forward(ids), withAdapters, null, $"{fixture} [{string.Join(",", targets)}] adapters vs edited HF weights");
        Assert.True((withAdapters - untouched.Forward(ids)).abs().max().item<float>() > 1e-2, "the adapters changed nothing: the test would not see a wrong mapping");
    }

    [Fact]
    public void Adapters_start_at_zero_update_and_only_they_are_trainable()
    {
        using var model = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var untouched = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        var c = model.Config;
        long count = LoraModel.Attach(model, new LoraConfig { R = 8, TargetModules = ["q_proj", "v_proj"] });
        // Per layer: q gets A (r × d) and B (heads·hd × r), v gets A (r × d) and B (kv·hd × r).
        long expected = c.NumLayers * (8L * c.HiddenSize + c.NumHeads * c.HeadDim * 8L + 8L * c.HiddenSize + c.NumKvHeads * c.HeadDim * 8L);
        Assert.Equal(expected, count);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        Assert.Equal(expected, trainable.Sum(p => p.parameter.numel()));
        Assert.All(trainable, p => Assert.Contains("_lora.", p.name));

        using var _ = no_grad();
        model.eval();
        var ids = Ids(c.VocabSize);
        Assert.True(Identical(model.Forward(ids), untouched.Forward(ids)), "B = 0 at the start: the adapted model must equal the base");
        // A follows PEFT's kaiming-uniform(a = √5): U(−1/√in, 1/√in).
        var a = model.named_parameters().First(p => p.name.EndsWith("q_proj.lora_A")).parameter;
        double bound = 1 / Math.Sqrt(c.HiddenSize);
        Assert.True(a.abs().max().item<float>() <= bound && a.abs().max().item<float>() > 0.8 * bound);
    }

    [Fact]
    public void Reference_with_adapters_off_is_the_untouched_base_exactly_and_holds_no_second_copy()
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var untouched = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        LoraModel.Attach(policy, new LoraConfig { TargetModules = ["all-linear"] });
        Randomize(policy, 5);
        var reference = policy.WithoutAdapters();

        // One copy in memory: the view owns no parameters, and the weights it computes with are the policy's.
        Assert.Empty(reference.parameters());
        Assert.Same(policy.model, reference.model);
        long policyBytes = policy.parameters().Sum(p => p.numel() * p.element_size());
        long allBytes = policy.parameters().Concat(reference.parameters()).DistinctBy(p => p.Handle).Sum(p => p.numel() * p.element_size());
        Assert.Equal(policyBytes, allBytes);

        using var _ = no_grad();
        policy.eval(); reference.eval();
        var ids = Ids(policy.Config.VocabSize);
        var mask = ones(ids.shape, int64); mask[0, 0] = 0; mask[0, 1] = 0; // left padding, as rollouts have
        var positions = Transformer.PositionsFromMask(mask);
        Assert.True(Identical(reference.Forward(ids, mask, positions), untouched.Forward(ids, mask, positions)), "adapters-off logits differ from the base's");
        Assert.False(Identical(policy.Forward(ids, mask, positions), untouched.Forward(ids, mask, positions)), "the policy's adapters were switched off for good");
        // The switch is scoped: after the reference forward, the policy computes with its adapters again.
        Assert.All(LoraModel.Adapters(policy), a => Assert.True(a.Adapter.Enabled));
        // Disposing the view frees nothing of the policy's.
        reference.Dispose();
        Assert.True(policy.Forward(ids).abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Saved_adapter_has_PEFT_key_names_and_config_and_loads_back_bit_exact()
    {
        string dir = Fixture("llama_tiny_gqa");
        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir);
        LoraModel.Attach(model, new LoraConfig { R = 4, Alpha = 16, Dropout = 0.1, TargetModules = ["q_proj", "v_proj"] });
        Randomize(model, 3);
        string adapterDir = Path.Combine(tmp, "adapter");
        PeftAdapter.Save(model, adapterDir, dir);

        // PEFT's naming rule (huggingface/peft src/peft/utils/save_and_load.py, get_peft_model_state_dict): the module
        // path inside PeftModel ("base_model.model." + the HF module name) + "lora_A"/"lora_B" + ".weight", adapter
        // name removed. LlamaForCausalLM's attention modules are model.layers.{i}.self_attn.{q,v}_proj.
        var expectedKeys = new[] { 0, 1 }.SelectMany(i => new[] { "q_proj", "v_proj" }.SelectMany(m => new[] { "A", "B" }
            .Select(ab => $"base_model.model.model.layers.{i}.self_attn.{m}.lora_{ab}.weight"))).Order(StringComparer.Ordinal).ToArray();
        var saved = SafeTensors.Load(Path.Combine(adapterDir, "adapter_model.safetensors"));
        Assert.Equal(expectedKeys, saved.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal([4L, 32L], saved["base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight"].shape);
        Assert.Equal([16L, 4L], saved["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"].shape); // 2 kv heads × 8

        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(adapterDir, "adapter_config.json")))!;
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal("CAUSAL_LM", config["task_type"]!.GetValue<string>());
        Assert.Equal(4, config["r"]!.GetValue<int>());
        Assert.Equal(16, config["lora_alpha"]!.GetValue<double>());
        Assert.Equal(0.1, config["lora_dropout"]!.GetValue<double>());
        Assert.Equal("none", config["bias"]!.GetValue<string>());
        Assert.False(config["fan_in_fan_out"]!.GetValue<bool>());
        Assert.Equal(["q_proj", "v_proj"], ((JsonArray)config["target_modules"]!).Select(t => t!.GetValue<string>()));
        Assert.Equal(Path.GetFullPath(dir), config["base_model_name_or_path"]!.GetValue<string>());

        using var loaded = HuggingFaceCheckpoint.LoadCausalLM(dir);
        PeftAdapter.Attach(loaded, adapterDir);
        var before = PeftAdapter.StateDict(model).ToDictionary(kv => kv.Key, kv => kv.Value);
        var after = PeftAdapter.StateDict(loaded);
        Assert.Equal(before.Count, after.Count);
        Assert.All(after, kv => Assert.True(Identical(kv.Value, before[kv.Key]), kv.Key));
    }

    [Fact]
    public void Gpt2_adapter_is_saved_under_c_attn_with_fan_in_fan_out()
    {
        string dir = Fixture("gpt2_tiny");
        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir);
        LoraModel.Attach(model, new LoraConfig { R = 2 }); // PEFT's gpt2 default: c_attn
        string adapterDir = Path.Combine(tmp, "gpt2");
        PeftAdapter.Save(model, adapterDir, dir);
        var saved = SafeTensors.Load(Path.Combine(adapterDir, "adapter_model.safetensors"));
        Assert.Equal(new[] { "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
                             "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight" },
            saved.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([96L, 2L], saved["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].shape); // nn.Linear shape, 3 × n_embd out
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapterDir, "adapter_config.json")))!;
        Assert.True(config["fan_in_fan_out"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData("llama_tiny_gqa")]
    [InlineData("gpt2_tiny")]
    public void Merged_checkpoint_gives_the_logits_of_base_plus_adapter(string fixture)
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(Fixture(fixture));
        LoraModel.Attach(model, new LoraConfig { R = 4, Alpha = 8, TargetModules = ["all-linear"] });
        Randomize(model, 9);
        model.eval();
        string adapterDir = Path.Combine(tmp, "adapter"), mergedDir = Path.Combine(tmp, "merged");
        PeftAdapter.Save(model, adapterDir, Fixture(fixture));
        using (var merged = HuggingFaceCheckpoint.LoadCausalLM(adapterDir)) // an adapter folder loads as base + merged adapter
            HuggingFaceCheckpoint.Save(merged, mergedDir);
        Assert.False(File.Exists(Path.Combine(mergedDir, PeftAdapter.ConfigFile)));
        using var full = HuggingFaceCheckpoint.LoadCausalLM(mergedDir);
        using var _ = no_grad();
        var ids = Ids(model.Config.VocabSize);
        HfFixture.AssertClose(model.Forward(ids), full.Forward(ids), null, $"{fixture}: merged vs base + adapter");
    }

    [Fact]
    public void Reward_adapter_saves_its_score_head_as_modules_to_save_and_reloads_the_same_rewards()
    {
        string dir = Fixture("llama_reward_tiny");
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(dir);
        LoraModel.Attach(rm, new LoraConfig { R = 4, TargetModules = ["q_proj", "v_proj"] });
        Assert.True(rm.score.weight!.requires_grad);
        Assert.False(rm.model.Embeddings.weight!.requires_grad);
        Randomize(rm, 2);
        using (no_grad()) rm.score.weight!.add_(0.5);
        rm.RewardMean = 0.25;
        rm.eval();
        string adapterDir = Path.Combine(tmp, "rm-adapter");
        PeftAdapter.Save(rm, adapterDir, dir);

        var saved = SafeTensors.Load(Path.Combine(adapterDir, PeftAdapter.WeightsFile));
        Assert.Contains("base_model.model.score.weight", saved.Keys); // modules_to_save, adapter name removed
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapterDir, PeftAdapter.ConfigFile)))!;
        Assert.Equal("SEQ_CLS", config["task_type"]!.GetValue<string>());
        Assert.Equal(["score"], ((JsonArray)config["modules_to_save"]!).Select(t => t!.GetValue<string>()));

        Assert.True(HuggingFaceCheckpoint.IsScoreModel(adapterDir));
        using var loaded = HuggingFaceCheckpoint.LoadScoreModel(adapterDir);
        Assert.Equal(0.25, loaded.RewardMean);
        using var _ = no_grad();
        var ids = Ids(rm.Config.VocabSize);
        HfFixture.AssertClose(rm.Rewards(ids), loaded.Rewards(ids), null, "reward adapter reload");
    }

    [Fact]
    public void Bad_adapters_and_targets_are_clear_errors()
    {
        using var model = HuggingFaceCheckpoint.LoadCausalLM(Fixture("llama_tiny_gqa"));
        var e = Assert.Throws<RlhfException>(() => LoraModel.Attach(model, new LoraConfig { TargetModules = ["c_attn"] }));
        Assert.Contains("'c_attn'", e.Message);
        Assert.Contains("q_proj", e.Message); // lists what exists

        LoraModel.Attach(model, new LoraConfig { R = 2 });
        // A full save of an adapted model would drop the adapters without a word: refused.
        Assert.Throws<InvalidOperationException>(() => HuggingFaceCheckpoint.Save(model, Path.Combine(tmp, "full")));
        string adapterDir = Path.Combine(tmp, "a");
        PeftAdapter.Save(model, adapterDir, Fixture("llama_tiny_gqa"));
        string configPath = Path.Combine(adapterDir, PeftAdapter.ConfigFile);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(configPath))!;
        config["use_dora"] = true;
        File.WriteAllText(configPath, config.ToJsonString());
        e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(adapterDir));
        Assert.Contains("use_dora", e.Message);

        config["use_dora"] = false;
        config["r"] = 3; // the tensors say 2
        File.WriteAllText(configPath, config.ToJsonString());
        e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(adapterDir));
        Assert.Contains("lora_A.weight", e.Message);
        Assert.Contains("r = 3", e.Message);
    }
}
