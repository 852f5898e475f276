using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Common;
using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// Every training stage on each family of fixtures/hf-wave3 (Gemma, Gemma 2, Phi-3, Mistral with its window, Mixtral,
/// Qwen2-MoE): a few tiny steps of SFT, reward modelling, PPO with a critic and DPO with LoRA, each doing what its
/// objective says, and the checkpoints going back out under HF's key names.
/// </summary>
public sealed class VariantTrainingTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-variant-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    public static readonly TheoryData<string> Cases = Models.VariantParityTests.Cases;

    static readonly int[] Prompt = [1, 30, 19, 40, 31, 17];
    static readonly int[] Target = [11, 12, 13, 14, 15, 16, 2];
    static OptimizerConfig Fast(double lr) => new() { LearningRate = lr, WarmupRatio = 0, Schedule = ScheduleKind.Constant };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Sft_rm_ppo_and_lora_dpo_train_and_save_with_hf_keys(string name)
    {
        var fx = new HfFixture(name, "hf-wave3");

        // SFT: the demonstration's loss falls; a mixture of experts logs its expert load every step.
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        var demo = new SftExample([.. Prompt, .. Target], [.. Prompt.Select(_ => false), .. Target.Select(_ => true)]);
        var sftLog = new MetricsLog(null);
        var sft = new SftTrainer(policy, new SftConfig { Epochs = 8, BatchSize = 2, Optimizer = Fast(1e-2) }, padId: 0) { Metrics = sftLog };
        double before = sft.Evaluate([demo])["eval_loss"];
        double after = sft.Train([demo, demo], [demo])["eval_loss"];
        Assert.True(after < before * 0.7, $"{name} SFT eval loss {before:F3} → {after:F3}");
        if (policy.Config.Moe is not null)
            Assert.All(sftLog.Rows, r => Assert.InRange(r["expert_load_max"], r["expert_load_min"], 1.0));

        // RM from the SFT checkpoint: a new score head, saved as HF's score.weight.
        string sftDir = Path.Combine(tmp, "sft");
        HuggingFaceCheckpoint.Save(policy, sftDir);
        manual_seed(1);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(sftDir, allowNewHead: true);
        var rng = new Random(1);
        RankedGroup Group()
        {
            int[] Response(int count) => Enumerable.Range(0, 6).Select(i => i < count ? 11 : 40 + rng.Next(20)).OrderBy(_ => rng.Next()).ToArray();
            return new RankedGroup(new[] { 3, 0 }.Select(c => Prompt.Concat(Response(c)).ToArray()).ToList());
        }
        var groups = Enumerable.Range(0, 16).Select(_ => Group()).ToList();
        var rmTrainer = new RewardTrainer(rm, new RewardConfig { Epochs = 4, PromptsPerBatch = 8, Optimizer = Fast(3e-3) }, padId: 0);
        double rmBefore = rmTrainer.Evaluate(groups)["eval_loss"];
        double rmAfter = rmTrainer.Train(groups, groups)["eval_loss"];
        Assert.True(rmAfter < rmBefore, $"{name} RM eval loss {rmBefore:F3} → {rmAfter:F3}");
        string rmDir = Path.Combine(tmp, "rm");
        HuggingFaceCheckpoint.Save(rm, rmDir);
        var expectedKeys = ((JsonArray)fx.Expected["saved_keys"]!).Select(k => k!.GetValue<string>()).Where(k => k != "lm_head.weight").Append("score.weight").OrderBy(k => k, StringComparer.Ordinal);
        Assert.Equal(expectedKeys, HuggingFaceCheckpoint.Read(rmDir).Weights.Keys.OrderBy(k => k, StringComparer.Ordinal));

        // PPO with a separate critic: a few rollouts and updates stay finite and move the policy.
        using var reference = policy.Clone();
        using var critic = HuggingFaceCheckpoint.LoadScoreModel(sftDir, allowNewHead: true);
        Tensor Score(SampleBatch b)
        {
            var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
            return (response.eq(11).to(float32) * b.ResponseMask).sum(1);
        }
        var ppoLog = new MetricsLog(null);
        var ppo = new PpoTrainer(policy, reference, critic, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, new PpoConfig
        {
            Steps = 2, RolloutBatchSize = 4, MiniBatchSize = 4, MaxNewTokens = 4, Critic = CriticKind.SeparateFromRewardModel,
            ActorOptimizer = Fast(1e-3), CriticOptimizer = Fast(1e-3),
        }) { Metrics = ppoLog };
        var weightBefore = policy.model.Embeddings.weight!.clone();
        ppo.Train(Enumerable.Range(0, 8).Select(i => (int[])[1, 30 + i]).ToArray(), []);
        Assert.Equal(2, ppoLog.Rows.Count);
        Assert.All(ppoLog.Rows, r => Assert.True(double.IsFinite(r["kl"]) && double.IsFinite(r["value_loss"]) && double.IsFinite(r["policy_loss"])));
        Assert.False(weightBefore.eq(policy.model.Embeddings.weight!).all().item<bool>(), $"{name}: PPO did not move the policy");

        // DPO with LoRA on PEFT's default targets (set explicitly where PEFT has none: phi3, qwen2_moe).
        using var lora = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        manual_seed(2);
        List<string>? targets = lora.Config.ModelType switch { "phi3" => ["qkv_proj"], "qwen2_moe" => ["q_proj", "v_proj"], _ => null };
        LoraModel.Attach(lora, new LoraConfig { R = 4, Alpha = 8, Dropout = 0.0, TargetModules = targets });
        Assert.Equal(targets ?? ["q_proj", "v_proj"], lora.model.Lora!.TargetModules!);
        using var loraReference = lora.WithoutAdapters();
        var pairs = Enumerable.Range(0, 4).Select(i => new PreferenceExample(Prompt, Target, [40 + i, 41, 42, 2])).ToList();
        var dpo = new PreferenceTrainer(lora, loraReference, new DpoConfig { Epochs = 4, BatchSize = 4, Optimizer = Fast(2e-2) }, padId: 0);
        Assert.Equal(0.0, dpo.Evaluate(pairs)["eval_margin"]);
        var dpoAfter = dpo.Train(pairs, pairs);
        Assert.True(dpoAfter["eval_margin"] > 0, $"{name} DPO margin {dpoAfter["eval_margin"]:F4}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Grpo_and_rloo_train_every_family_through_its_kv_cache(string name)
    {
        // The GRPO family: group rollouts through the KV cache (Mistral's window, Gemma 2's alternate windows and the
        // experts' routing included), then clipped updates against a frozen reference; GRPO and RLOO's baseline.
        foreach (var estimator in new[] { AdvantageEstimator.Grpo, AdvantageEstimator.Rloo })
        {
            using var policy = HuggingFaceCheckpoint.LoadCausalLM(new HfFixture(name, "hf-wave3").Dir);
            using var reference = policy.Clone();
            int vocab = policy.Config.VocabSize;
            manual_seed(4);
            Tensor Score(SampleBatch b)
            {
                var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
                // Dense: the mean token id over the vocabulary (in [0, 1], under the reward clip), so the completions of a
                // group differ in reward and the advantages are not all 0.
                return (response.to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1) / vocab;
            }
            var before = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
            var log = new MetricsLog(null);
            new GroupRlTrainer(policy, reference, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, new GroupRlConfig
            {
                Estimator = estimator, Steps = 2, PromptsPerStep = 2, GroupSize = 4, MaxNewTokens = 6, MiniBatchSize = 8, Beta = 0.01, Optimizer = Fast(1e-2),
            }) { Metrics = log }.Train(Enumerable.Range(0, 4).Select(i => (int[])[1, 30 + i, 19]).ToArray());
            Assert.Equal(2, log.Rows.Count);
            Assert.All(log.Rows, r => Assert.True(double.IsFinite(r["kl"]) && double.IsFinite(r["reward_mean"]), $"{name} {estimator}: {string.Join(", ", r)}"));
            Assert.True(policy.named_parameters().Any(p => !p.parameter.eq(before[p.name]).all().item<bool>()),
                $"{name} {estimator}: the policy did not move; {string.Join(" | ", log.Rows.Select(r => string.Join(", ", r.Select(kv => $"{kv.Key}={kv.Value:G4}"))))}");
            if (policy.Config.Moe is not null)
                Assert.All(log.Rows, r => Assert.InRange(r["expert_load_max"], r["expert_load_min"], 1.0));
        }
    }

    [Fact]
    public void Default_lora_targets_are_pefts_and_families_without_one_must_name_theirs()
    {
        foreach (var name in new[] { "gemma_tiny", "gemma2_tiny", "mixtral_tiny", "mistral_sliding_tiny" })
            Assert.Equal(["q_proj", "v_proj"], LoraModel.DefaultTargets(HuggingFaceCheckpoint.Read(new HfFixture(name, "hf-wave3").Dir).Config));
        foreach (var name in new[] { "phi3_tiny", "qwen2moe_tiny" })
        {
            var e = Assert.Throws<RlhfException>(() => LoraModel.DefaultTargets(HuggingFaceCheckpoint.Read(new HfFixture(name, "hf-wave3").Dir).Config));
            Assert.Contains("target_modules", e.Message);
        }
    }

    [Fact]
    public void Router_balance_loss_matches_hf_load_balancing_loss_func()
    {
        var j = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "moe", "router_loss.json")))!;
        var logits = ((JsonArray)j["gate_logits"]!).Select(layer => tensor(((JsonArray)layer!).SelectMany(r => ((JsonArray)r!).Select(v => v!.GetValue<double>())).ToArray(),
            [((JsonArray)layer!).Count, j["num_experts"]!.GetValue<int>()])).ToList();
        var mask = HfFixture.Ints(j["attention_mask"])!;
        int e = j["num_experts"]!.GetValue<int>(), k = j["top_k"]!.GetValue<int>();
        Assert.Equal(j["loss_no_mask"]!.GetValue<double>(), RouterBalanceLoss.Compute(logits, e, k, null).item<double>(), 10);
        Assert.Equal(j["loss_with_mask"]!.GetValue<double>(), RouterBalanceLoss.Compute(logits, e, k, mask).item<double>(), 10);
    }
}
