using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Lora;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using RlhfSharp.Training;

namespace RlhfSharp.Tests.Training;

/// <summary>A stage's frozen reference can be held in bf16 (<c>reference_dtype</c>, issue #20), and the stage still trains.</summary>
public sealed class ReferenceDtypeTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-refdtype-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static readonly int[] Prompt = [1, 403, 407, 261, 378];

    static List<PreferenceExample> Pairs(int n)
    {
        var rng = new Random(3);
        return Enumerable.Range(0, n).Select(_ => new PreferenceExample(Prompt, [300, 301, 302, 303, 2],
            [.. Enumerable.Range(0, 3 + rng.Next(4)).Select(_ => 270 + rng.Next(20)), 2])).ToList();
    }

    /// <summary>The first step's metrics of one DPO epoch from stories260K with the reference in <paramref name="dtype"/>.</summary>
    Dictionary<string, double> FirstDpoStep(string dtype)
    {
        using var stories = PretrainedModel.Load("stories260k");
        string policyDir = Path.Combine(tmp, "policy");
        if (!Directory.Exists(policyDir)) HuggingFaceCheckpoint.Save(stories.Model, policyDir, writeExtras: stories.WriteTokenizerFiles);
        string runDir = Path.Combine(tmp, "run-" + dtype);
        var stages = new RunStages(stories, runDir);
        var config = new DpoConfig
        {
            ReferenceDtype = dtype, Epochs = 1, BatchSize = 4,
            Optimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
        };
        config.Validate("dpo");
        var result = stages.Preference(config, policyDir, Pairs(8), Pairs(4), CancellationToken.None);
        Assert.True(double.IsFinite(result["eval_loss"]), $"{dtype}: eval loss {result["eval_loss"]}");
        var rows = MetricsLog.Read(Path.Combine(runDir, "dpo", "metrics.jsonl")).ToList();
        Assert.True(File.Exists(Path.Combine(runDir, "dpo", "checkpoint", HuggingFaceCheckpoint.WeightsFile)));
        return rows[0];
    }

    [Fact]
    public void A_bf16_reference_is_the_rounded_policy_and_DPO_still_trains()
    {
        var f32 = FirstDpoStep("float32");
        var bf16 = FirstDpoStep("bf16");
        // At step 0 the policy is the reference's source: a float32 reference gives implied rewards of exactly 0, a bf16
        // one the small log-ratio of the rounding (β·Δlogp with Δlogp of a few tokens at 2^-9 relative weight error).
        Assert.Equal(0.0, f32["rewards/chosen"], 9);
        Assert.NotEqual(0.0, bf16["rewards/chosen"]);
        Assert.True(Math.Abs(bf16["rewards/chosen"]) < 0.05, $"bf16 reference: rewards/chosen {bf16["rewards/chosen"]}");
        Assert.True(Math.Abs(bf16["rewards/rejected"]) < 0.05, $"bf16 reference: rewards/rejected {bf16["rewards/rejected"]}");
        // −log σ(m) at m = 0 moves by m/2, and the margin m = chosen − rejected reward is under 0.1 by the bounds above
        // (0.704 against ln 2 on a first-generation EPYC, whose bf16 matmul rounds more than AVX-512 BF16 machines').
        Assert.True(Math.Abs(f32["loss"] - bf16["loss"]) < 0.05, $"loss {f32["loss"]} (float32 reference) vs {bf16["loss"]} (bf16)");
    }

    [Fact]
    public void Reference_dtype_is_a_recipe_key_of_every_stage_with_a_reference()
    {
        string path = Path.Combine(tmp, "r.json");
        File.WriteAllText(path, """{"ppo": {"reference_dtype": "bf16"}, "dpo": {"reference_dtype": "bfloat16"}, "grpo": {"reference_dtype": "f16"}}""");
        var c = Recipe.Load<PipelineConfig>(path);
        Assert.Equal("bf16", c.Ppo.ReferenceDtype);
        Assert.Equal("bfloat16", c.Dpo.ReferenceDtype);
        Assert.Equal("f16", c.Grpo.ReferenceDtype);
    }

    [Fact]
    public void A_bad_reference_dtype_or_one_under_LoRA_is_a_clear_error()
    {
        var e = Assert.Throws<RlhfException>(() => new PpoConfig { ReferenceDtype = "int8" }.Validate("ppo"));
        Assert.Contains("ppo.reference_dtype", e.Message);
        e = Assert.Throws<RlhfException>(() => new DpoConfig { ReferenceDtype = "bf16", Lora = new LoraConfig() }.Validate("dpo"));
        Assert.Contains("dpo.reference_dtype", e.Message);
        e = Assert.Throws<RlhfException>(() => new GroupRlConfig { ReferenceDtype = "half", Lora = new LoraConfig() }.Validate("grpo"));
        Assert.Contains("grpo.reference_dtype", e.Message);
        new GroupRlConfig { ReferenceDtype = "bf16" }.Validate("grpo");
    }
}
