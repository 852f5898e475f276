using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// The trainers take any body: SFT → reward model → PPO with a critic → DPO → GRPO on the tiny OPT, GPT-NeoX, GPT-J,
/// BLOOM and RWKV-4 fixtures (RWKV's rollouts decode through its recurrent state), each stage doing what its objective says, the checkpoints in between written as HF folders.
/// </summary>
public sealed class ClassicFamilyTrainingTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-classic-train-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static readonly int[] Prompt = [1, 5, 6, 7];
    static readonly int[] Target = [10, 11, 12, 13, 2];
    static OptimizerConfig Lr(double lr) => new() { LearningRate = lr, WarmupRatio = 0, Schedule = ScheduleKind.Constant };

    [Theory]
    [InlineData("opt_tiny_proj")]
    [InlineData("neox_tiny_parallel")]
    [InlineData("gptj_tiny")]
    [InlineData("bloom_tiny")]
    [InlineData("rwkv_tiny")]
    public void Sft_rm_ppo_dpo_grpo_chain_trains_the_family(string name)
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(new HfFixture(name, "hf-wave2").Dir);
        manual_seed(1);

        // SFT: the demonstration's loss falls.
        var demo = new SftExample([.. Prompt, .. Target], [.. Prompt.Select(_ => false), .. Target.Select(_ => true)]);
        var sft = new SftTrainer(policy, new SftConfig { Epochs = 15, BatchSize = 2, Optimizer = Lr(3e-3) }, padId: 0);
        double sftBefore = sft.Evaluate([demo])["eval_loss"];
        double sftAfter = sft.Train([demo, demo], [demo])["eval_loss"];
        Assert.True(sftAfter < sftBefore * 0.5, $"SFT eval loss {sftBefore:F3} → {sftAfter:F3}");
        string sftDir = Path.Combine(tmp, "sft");
        HuggingFaceCheckpoint.Save(policy, sftDir);

        // Reward model from the SFT folder: better = more copies of token 20.
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(sftDir, allowNewHead: true);
        var rng = new Random(1);
        RankedGroup Group()
        {
            int[] Response(int count) => Enumerable.Range(0, 6).Select(i => i < count ? 20 : 30 + rng.Next(20)).OrderBy(_ => rng.Next()).ToArray();
            return new RankedGroup(new[] { 4, 1 }.Select(c => Prompt.Concat(Response(c)).ToArray()).ToList());
        }
        var groups = Enumerable.Range(0, 24).Select(_ => Group()).ToList();
        var rewardTrainer = new RewardTrainer(rm, new RewardConfig { Epochs = 3, PromptsPerBatch = 8, Optimizer = Lr(3e-3) }, padId: 0);
        double rmBefore = rewardTrainer.Evaluate(groups)["eval_loss"];
        double rmAfter = rewardTrainer.Train(groups, groups)["eval_loss"];
        Assert.True(rmAfter < rmBefore, $"RM eval loss {rmBefore:F3} → {rmAfter:F3}");

        // PPO with a critic started from the SFT folder: finite KL and value loss, and the policy moves.
        using var reference = policy.Clone();
        using var critic = HuggingFaceCheckpoint.LoadScoreModel(sftDir, allowNewHead: true);
        Tensor Score(SampleBatch b)
        {
            var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
            return (response.eq(20).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1);
        }
        var before = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var ppoLog = new MetricsLog(null);
        new PpoTrainer(policy, reference, critic, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, new PpoConfig
        {
            Steps = 2, RolloutBatchSize = 4, MiniBatchSize = 4, PpoEpochs = 1, MaxNewTokens = 6, PtxCoef = 0, Critic = CriticKind.SeparateFromRewardModel,
            ActorOptimizer = Lr(1e-3), CriticOptimizer = Lr(1e-3),
        }) { Metrics = ppoLog }.Train(Enumerable.Range(0, 8).Select(i => (int[])[1, 5 + i % 3]).ToArray(), []);
        Assert.NotEmpty(ppoLog.Rows);
        Assert.All(ppoLog.Rows, r => Assert.True(double.IsFinite(r["kl"]) && double.IsFinite(r["value_loss"]), $"PPO row {string.Join(", ", r)}"));
        Assert.Contains(policy.named_parameters(), p => !p.parameter.eq(before[p.name]).all().item<bool>());

        // DPO against a frozen copy: the margin starts at 0 and grows.
        using var dpoReference = policy.Clone();
        var pairs = Enumerable.Range(0, 8).Select(i => new PreferenceExample(Prompt, Target, [30 + i, 31 + i, 2])).ToList();
        var dpo = new PreferenceTrainer(policy, dpoReference, new DpoConfig { Epochs = 3, BatchSize = 4, Optimizer = Lr(1e-3) }, padId: 0);
        Assert.Equal(0.0, dpo.Evaluate(pairs)["eval_margin"], 6);
        Assert.True(dpo.Train(pairs, pairs)["eval_margin"] > 0, "DPO margin did not grow");

        // GRPO: group rollouts through the KV cache, finite KL.
        using var grpoReference = policy.Clone();
        var grpoLog = new MetricsLog(null);
        new GroupRlTrainer(policy, grpoReference, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, new GroupRlConfig
        {
            Steps = 2, PromptsPerStep = 2, GroupSize = 4, MaxNewTokens = 6, MiniBatchSize = 8, Beta = 0.01, Optimizer = Lr(1e-3),
        }) { Metrics = grpoLog }.Train(Enumerable.Range(0, 4).Select(i => (int[])[1, 5 + i]).ToArray());
        Assert.Equal(2, grpoLog.Rows.Count);
        Assert.All(grpoLog.Rows, r => Assert.True(double.IsFinite(r["kl"]) && double.IsFinite(r["reward_mean"])));
    }
}
