using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Lora;

/// <summary>The trainers with adapters only: the base stays bit-identical, the reference is the base, the policy still learns.</summary>
public sealed class LoraTrainingTests
{
    static CausalLM Stories() => Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);

    static readonly int[] Prompt = [1, 403, 407, 261, 378];
    static readonly int[] Chosen = [300, 301, 302, 303, 304, 305, 2];

    static List<PreferenceExample> Pairs(int n)
    {
        var rng = new Random(1);
        return Enumerable.Range(0, n).Select(_ => new PreferenceExample(Prompt, Chosen,
            [.. Enumerable.Range(0, 4 + rng.Next(5)).Select(_ => 270 + rng.Next(20)), 2])).ToList();
    }

    static void AssertBaseUnchanged(CausalLM trained, CausalLM untouched)
    {
        var original = untouched.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        int compared = 0;
        foreach (var (name, p) in trained.named_parameters().Where(p => !p.name.Contains("_lora.")))
        {
            Assert.True(p.eq(original[name]).all().item<bool>(), $"base weight {name} changed");
            compared++;
        }
        Assert.Equal(original.Count, compared);
    }

    [Fact]
    public void Dpo_with_lora_trains_adapters_only_against_the_adapters_off_reference()
    {
        using var policy = Stories();
        using var untouched = Stories();
        manual_seed(1);
        LoraModel.Attach(policy, new LoraConfig { R = 8, Alpha = 16, Dropout = 0.0, TargetModules = ["all-linear"] });
        using var reference = policy.WithoutAdapters();
        // LoRA steps larger than full fine-tuning (alpaca-lora trains at 3e-4; this tiny test needs 1e-2).
        var config = new DpoConfig { Epochs = 3, BatchSize = 4, Optimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant } };
        var log = new MetricsLog(null);
        var trainer = new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log };
        var pairs = Pairs(8);
        var before = trainer.Evaluate(pairs);
        Assert.Equal(0.0, before["eval_margin"]); // B = 0: policy and reference are the same function, bit for bit
        var after = trainer.Train(pairs, pairs);
        Assert.Equal(Math.Log(2), log.Rows[0]["loss"], 6);
        Assert.True(after["eval_margin"] > 0.5, $"margin {after["eval_margin"]:F3}");
        Assert.Equal(1.0, after["eval_accuracy"]);
        AssertBaseUnchanged(policy, untouched);

        // The reference the trainer used is still the base model, exactly.
        using var _ = no_grad();
        var ids = tensor(Prompt.Concat(Chosen).Select(x => (long)x).ToArray()).unsqueeze(0);
        Assert.True(reference.Forward(ids).eq(untouched.Forward(ids)).all().item<bool>());
        Assert.False(policy.Forward(ids).eq(untouched.Forward(ids)).all().item<bool>());
    }

    [Fact]
    public void Grpo_with_lora_starts_at_zero_kl_and_leaves_the_base_untouched()
    {
        using var policy = Stories();
        using var untouched = Stories();
        manual_seed(2);
        LoraModel.Attach(policy, new LoraConfig { Dropout = 0.0, TargetModules = ["all-linear"] });
        using var reference = policy.WithoutAdapters();
        var config = new GroupRlConfig
        {
            Steps = 2, PromptsPerStep = 2, GroupSize = 4, MaxNewTokens = 8, MiniBatchSize = 8, Epochs = 1, Beta = 0.01,
            Optimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
        };
        // Reward: the fraction of completion tokens equal to 261 (" a").
        Tensor Score(SampleBatch b)
        {
            var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
            return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1);
        }
        var log = new MetricsLog(null);
        var prompts = Enumerable.Range(0, 8).Select(i => (int[])[1, 403 + i % 4]).ToList();
        new GroupRlTrainer(policy, reference, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, config) { Metrics = log }.Train(prompts);
        Assert.Equal(2, log.Rows.Count);
        Assert.Equal(0.0, log.Rows[0]["kl"]); // first rollout: adapters are zero, so policy == reference exactly
        Assert.True(log.Rows[^1]["kl"] > 0, "the adapters never moved the policy");
        AssertBaseUnchanged(policy, untouched);
    }

    [Fact]
    public void Recipe_lora_section_turns_on_with_published_defaults_and_rejects_unknown_keys()
    {
        var off = Recipe.Load<StageRecipe>(null);
        Assert.Null(off.Dpo.Lora);
        var on = Recipe.Load<StageRecipe>(null, ["dpo.lora.r=4", "sft.lora={}", "grpo.lora.target_modules=[\"q_proj\",\"k_proj\"]"]);
        Assert.Equal(4, on.Dpo.Lora!.R);
        Assert.Equal(16, on.Dpo.Lora.Alpha);
        Assert.Equal(0.05, on.Dpo.Lora.Dropout);
        Assert.Equal(new LoraConfig(), on.Sft.Lora! with { });
        Assert.Equal(["q_proj", "k_proj"], on.Grpo.Lora!.TargetModules!);
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<StageRecipe>(null, ["dpo.lora.rank=4"]));
        Assert.Contains("dpo.lora.rank", e.Message);
    }
}
