using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Models;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using RlhfSharp.Tests.Tokenization;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// Each stage's <c>disable_dropout</c> with TRL's defaults: SFT trains with the model's dropout (sft_config.py has no such
/// key), DPO turns it off (dpo_config.py <c>disable_dropout=True</c>), so a DPO run on a model with dropout is bit for bit
/// the run on the same weights without it; PPO and the group-RL family refuse to keep it (old log-probs in eval mode).
/// </summary>
[Collection(ProcessWideStateCollection.Name)] // seeds torch's global generator (dropout masks)
public sealed class StageDropoutTests
{
    static readonly int[] Prompt = [1, 40, 47, 26];
    static readonly int[] Target = [30, 31, 32, 2];

    /// <summary>The GPT-2 fixture with all three of its dropouts at <paramref name="p"/> (its config.json has 0.1, GPT-2's).</summary>
    static TempDir Gpt2(double p)
    {
        var dir = new TempDir();
        var source = Path.Combine(AppContext.BaseDirectory, "fixtures", "hf", "gpt2_tiny");
        foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        var j = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!;
        j["embd_pdrop"] = p; j["attn_pdrop"] = p; j["resid_pdrop"] = p;
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), j.ToJsonString());
        return dir;
    }

    static List<Dictionary<string, double>> Sft(double p, SftConfig config)
    {
        using var dir = Gpt2(p);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir.Path);
        var demo = new SftExample([.. Prompt, .. Target], [.. Prompt.Select(_ => false), .. Target.Select(_ => true)]);
        var log = new MetricsLog(null);
        manual_seed(9);
        new SftTrainer(model, config, padId: 0) { Metrics = log }.Train([demo, demo], []);
        return log.Rows;
    }

    static List<Dictionary<string, double>> Dpo(double p, DpoConfig config)
    {
        using var dir = Gpt2(p);
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(dir.Path);
        using var reference = HuggingFaceCheckpoint.LoadCausalLM(dir.Path);
        var pair = new PreferenceExample(Prompt, Target, [31, 41, 52, 2]);
        var log = new MetricsLog(null);
        manual_seed(9);
        new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log }.Train([pair, pair], []);
        return log.Rows;
    }

    static bool Same(List<Dictionary<string, double>> a, List<Dictionary<string, double>> b, params string[] keys) =>
        a.Count == b.Count && a.Count >= 2 && Enumerable.Range(0, a.Count).All(i => keys.All(k => a[i][k] == b[i][k]));

    static readonly OptimizerConfig Constant = new() { LearningRate = 3e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant };

    [Fact]
    public void Sft_trains_with_the_models_dropout_unless_disable_dropout_is_set()
    {
        var sft = new SftConfig { Epochs = 3, BatchSize = 2, Optimizer = Constant };
        Assert.False(sft.DisableDropout);
        var kept = Sft(0.1, sft);
        var off = Sft(0.1, sft with { DisableDropout = true });
        var none = Sft(0.0, sft);
        Assert.False(Same(kept, off, "loss"), "SFT's default must keep the model's dropout, as TRL's SFTTrainer");
        Assert.True(Same(off, none, "loss", "grad_norm"), "disable_dropout: true must train as the same weights without dropout");
    }

    [Fact]
    public void Dpo_turns_dropout_off_by_default_and_then_equals_the_run_without_it_bit_for_bit()
    {
        var dpo = new DpoConfig { Epochs = 2, BatchSize = 2, Optimizer = Constant with { LearningRate = 1e-3 } };
        Assert.True(dpo.DisableDropout);
        var byDefault = Dpo(0.1, dpo);
        var none = Dpo(0.0, dpo);
        Assert.True(Same(byDefault, none, "loss", "rewards/margins", "grad_norm"));
        Assert.NotEqual(byDefault[0]["loss"], byDefault[^1]["loss"]);
        Assert.False(Same(Dpo(0.1, dpo with { DisableDropout = false }), none, "loss"), "disable_dropout: false must keep it");
    }

    [Theory]
    [InlineData("sft", false)]     // trl/trainer/sft_config.py: no disable_dropout
    [InlineData("rs.sft", false)]
    [InlineData("ilql", false)]
    [InlineData("rm", true)]       // reward_config.py
    [InlineData("prm", true)]      // prm_config.py
    [InlineData("dpo", true)]      // dpo_config.py (kto, cpo, orpo alike)
    [InlineData("online_dpo.dpo", true)] // online_dpo_config.py
    [InlineData("ppo", true)]      // ppo_trainer.py calls disable_dropout_in_model
    [InlineData("grpo", true)]     // deviation from grpo_config.py's False: old log-probs from eval mode
    public void The_key_reaches_every_stage_with_trls_default(string section, bool expected)
    {
        StageConfig Section(PipelineConfig c) => section switch
        {
            "sft" => c.Sft, "rm" => c.Rm, "prm" => c.Prm, "dpo" => c.Dpo, "ppo" => c.Ppo, "grpo" => c.Grpo, "ilql" => c.Ilql,
            "rs.sft" => c.Rs.Sft, "online_dpo.dpo" => c.OnlineDpo.Dpo, _ => throw new ArgumentException(section),
        };
        Assert.Equal(expected, Section(Recipe.Load<PipelineConfig>(null, [])).DisableDropout);
        if (section is "ppo" or "grpo") return; // false is refused there (next test)
        Assert.Equal(!expected, Section(Recipe.Load<PipelineConfig>(null, [$"{section}.disable_dropout={(!expected ? "true" : "false")}"])).DisableDropout);
    }

    [Theory]
    [InlineData("ppo")]
    [InlineData("grpo")]
    public void Stages_that_take_old_logprobs_in_eval_mode_refuse_to_keep_dropout(string section)
    {
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(null, [$"{section}.disable_dropout=false"]));
        Assert.Contains($"{section}.disable_dropout", e.Message);
    }
}
