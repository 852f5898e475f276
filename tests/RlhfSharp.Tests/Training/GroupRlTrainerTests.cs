using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>The critic-free trainer on the real stories260K model, and the pieces it is built from.</summary>
public sealed class GroupRlTrainerTests
{
    static CausalLM Stories() => Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);

    // Reward: ten times the fraction of completion tokens that are token 261 (" a"), which the base model writes sometimes.
    static Tensor Score(SampleBatch b)
    {
        var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
        return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1) * 10;
    }

    static readonly int[][] Prompts = Enumerable.Range(0, 16).Select(i => (int[])[1, 403 + i % 4]).ToArray();

    static GroupRlConfig Tiny(AdvantageEstimator estimator) => new()
    {
        Estimator = estimator, Steps = 10, PromptsPerStep = 4, GroupSize = 4, MaxNewTokens = 16, MiniBatchSize = 8, Epochs = 2,
        RewardKlCoef = 0.01, Beta = estimator == AdvantageEstimator.Grpo ? 0.01 : 0.0,
        // ReMax's advantages are raw reward differences, not divided by a std, and mostly negative (greedy beats a
        // sample): at 2e-3 the tiny model's entropy rises and the reward collapses after step 4, so it steps smaller.
        Optimizer = new OptimizerConfig { LearningRate = estimator == AdvantageEstimator.Remax ? 5e-4 : 2e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
    };

    static MetricsLog Run(CausalLM policy, GroupRlConfig config, IReadOnlyList<int[]> prompts)
    {
        using var reference = policy.Clone();
        var log = new MetricsLog(null);
        new GroupRlTrainer(policy, reference, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, config) { Metrics = log }.Train(prompts);
        return log;
    }

    [Theory]
    [InlineData(AdvantageEstimator.Grpo)]
    [InlineData(AdvantageEstimator.Rloo)]
    [InlineData(AdvantageEstimator.ReinforcePp)]
    [InlineData(AdvantageEstimator.ReinforcePpBaseline)]
    [InlineData(AdvantageEstimator.Remax)]
    public void Each_estimator_raises_a_simple_reward_and_logs_its_diagnostics(AdvantageEstimator estimator)
    {
        using var policy = Stories();
        var log = Run(policy, Tiny(estimator), Prompts);
        var rewards = log.Rows.Select(r => r["reward_mean"]).ToList();
        double first = rewards.Take(3).Average(), last = rewards.TakeLast(3).Average();
        Assert.True(last > first + 0.5, $"{estimator}: reward {first:F2} → {last:F2}; rows: "
            + string.Join(" | ", log.Rows.Select(r => string.Join(",", r.Where(kv => kv.Key is "reward_mean" or "baseline_mean" or "advantage_std" or "grad_norm" or "kl" or "entropy").Select(kv => $"{kv.Key}={kv.Value:F2}")))));
        foreach (var key in new[] { "reward_std", "advantage_std", "zero_std_fraction", "kl", "clipfrac", "entropy", "response_length",
                     "tokens_per_s", "time_generate", "time_score", "time_train", "grad_norm" })
            Assert.All(log.Rows, r => Assert.True(double.IsFinite(r[key]), $"{key} = {r[key]}"));
        Assert.All(log.Rows, r => Assert.InRange(r["zero_std_fraction"], 0, 1));
        if (estimator == AdvantageEstimator.Grpo) Assert.All(log.Rows, r => Assert.True(r["kl_loss"] >= 0));
    }

    [Theory]
    [InlineData(LossAggregation.TokenMean)]
    [InlineData(LossAggregation.SeqMeanTokenMean)]
    [InlineData(LossAggregation.SeqMeanTokenSumNorm)]
    public void Accumulated_micro_batch_losses_have_the_gradient_of_one_big_batch(LossAggregation aggregation)
    {
        manual_seed(3);
        var values = randn(4, 6);
        // Completions of 5, 1, 2 and 5 tokens: micro-batches of 6 and 7 tokens, so their own means would weigh tokens unequally.
        var mask = tensor(new float[]
        {
            1, 1, 1, 1, 1, 0,
            1, 0, 0, 0, 0, 0,
            1, 1, 0, 0, 0, 0,
            1, 1, 1, 1, 1, 0,
        }, [4, 6]);
        double stepTokens = mask.sum().item<float>();

        var whole = values.clone().requires_grad_(true);
        GroupRlLoss.Aggregate(whole.square(), mask, aggregation, stepTokens, 4, 6).backward();

        var parts = values.clone().requires_grad_(true);
        foreach (var (start, length) in new[] { (0, 2), (2, 2) })
            GroupRlLoss.Aggregate(parts.narrow(0, start, length).square(), mask.narrow(0, start, length), aggregation, stepTokens, 4, 6).backward();
        Assert.True(whole.grad!.allclose(parts.grad!, rtol: 1e-6, atol: 1e-7));

        // Dividing each micro-batch by its own token count and averaging, as naive accumulation does, differs.
        if (aggregation == LossAggregation.TokenMean)
        {
            var naive = values.clone().requires_grad_(true);
            foreach (var (start, length) in new[] { (0, 2), (2, 2) })
            {
                var m = mask.narrow(0, start, length);
                (GroupRlLoss.Aggregate(naive.narrow(0, start, length).square(), m, aggregation, m.sum().item<float>(), length, 6) / 2).backward();
            }
            Assert.False(whole.grad!.allclose(naive.grad!, rtol: 1e-4, atol: 1e-6));
        }
    }

    [Fact]
    public void Trainer_step_with_gradient_accumulation_matches_one_big_micro_batch_on_the_same_rollouts()
    {
        Dictionary<string, double> OneStep(int miniBatch, int accumulation)
        {
            using var policy = Stories();
            var config = Tiny(AdvantageEstimator.Grpo) with
            {
                Steps = 1, Epochs = 1, MiniBatchSize = miniBatch, Beta = 0.04,
                Optimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant, GradientAccumulation = accumulation },
            };
            return Run(policy, config, Prompts).Rows.Single();
        }
        var big = OneStep(16, 1);
        var accumulated = OneStep(4, 4);
        Assert.Equal(big["reward_mean"], accumulated["reward_mean"]);
        Assert.Equal(big["policy_loss"], accumulated["policy_loss"], 5);
        Assert.Equal(big["grad_norm"], accumulated["grad_norm"], 4);
    }

    [Fact]
    public void Zero_std_groups_yield_zero_advantage()
    {
        var scores = tensor(new float[] { 1, 1, 1, 1, 0, 2, 0, 2 });
        var mask = ones(8, 3);
        var kl = zeros(8, 3);
        foreach (var scaling in new[] { RewardScaling.Group, RewardScaling.Batch, RewardScaling.None })
        {
            var grpo = CriticFreeAdvantages.Compute(AdvantageEstimator.Grpo, scores, kl, mask, 4, scaling: scaling);
            Assert.Equal(0.5, grpo.ZeroStdFraction);
            Assert.Equal(0f, grpo.Advantages.narrow(0, 0, 4).abs().max().item<float>());
            Assert.True(grpo.Advantages.narrow(0, 4, 4).abs().min().item<float>() > 0.5);
        }
        var rloo = CriticFreeAdvantages.Compute(AdvantageEstimator.Rloo, scores, kl, mask, 4);
        Assert.Equal(0f, rloo.Advantages.narrow(0, 0, 4).abs().max().item<float>());
        // Leave-one-out in the second group: 0 − mean(2, 0, 2) = −4/3 and 2 − mean(0, 0, 2) = 4/3.
        Assert.Equal(-4f / 3, rloo.Advantages[4, 0].item<float>(), 5);
        Assert.Equal(4f / 3, rloo.Advantages[5, 2].item<float>(), 5);
    }

    [Fact]
    public void Remax_baseline_is_the_reward_of_the_greedy_rollout()
    {
        var unit = CriticFreeAdvantages.Compute(AdvantageEstimator.Remax, tensor(new float[] { 3, 1, 0, 4 }), zeros(4, 2), ones(4, 2), 2,
            greedyScores: tensor(new float[] { 2, 1 }));
        Assert.Equal(new float[] { 2, 2, 1, 1 }, unit.Baselines!.data<float>().ToArray());
        Assert.Equal(new float[] { 1, 1, -1, -1, -1, -1, 3, 3 }, unit.Advantages.data<float>().ToArray());

        // In the trainer: the logged baseline of the first step is the score of greedy completions of its prompts (the
        // policy is still the reference, so the KL folded into the baseline is 0).
        var prompts = Prompts.Take(4).ToArray();
        using var policy = Stories();
        double greedy;
        using (var scope = NewDisposeScope())
        {
            var sampler = new Sampler(policy) { EosIds = [2], PadId = 0 };
            var (ids, m) = sampler.LeftPad(prompts);
            using var batch = sampler.Sample(ids, m, new SamplingOptions { MaxNewTokens = 16, Temperature = 0 });
            greedy = Score(batch).mean().item<float>();
        }
        var row = Run(policy, Tiny(AdvantageEstimator.Remax) with { Steps = 1 }, prompts).Rows.Single();
        Assert.Equal(greedy, row["baseline_mean"], 5);
        Assert.Equal(greedy, row["greedy_score_mean"], 5);
    }
}
