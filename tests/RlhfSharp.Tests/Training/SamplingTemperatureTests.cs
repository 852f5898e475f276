using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// PPO and the GRPO family score rollouts under the distribution that sampled them: logits / temperature, as TRL's
/// grpo_trainer and OpenRLHF's models/actor.py. At T = 0.7 the first minibatch's ratio is 1, the KL of the policy to
/// its own copy is 0, and the trained log-probs are the sampler's.
/// </summary>
public sealed class SamplingTemperatureTests
{
    const double T = 0.7;
    static Tensor Score(SampleBatch b)
    {
        var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
        return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1) * 10;
    }
    static readonly int[][] Prompts = Enumerable.Range(0, 8).Select(i => (int[])[1, 403 + i % 4]).ToArray();
    static OptimizerConfig Constant => new() { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant };

    static void AssertSamplerDistribution(IReadOnlyDictionary<string, double> row)
    {
        Assert.True(row["approx_kl"] <= 1e-7, $"approx_kl {row["approx_kl"]}: the first minibatch's ratio is not 1");
        Assert.Equal(0.0, row["clipfrac"]);
        Assert.Equal(0.0, row["kl"]);
        // Old log-probs against the sampler's (KV cache vs full forward: float noise only).
        Assert.True(row["logprobs_diff_sampler"] < 1e-4, $"trained log-probs differ from the sampler's by {row["logprobs_diff_sampler"]} per token");
    }

    [Fact]
    public void Ppo_at_temperature_trains_on_the_samplers_log_probs()
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var reference = policy.Clone();
        var config = new PpoConfig
        {
            Steps = 1, RolloutBatchSize = 8, MiniBatchSize = 8, PpoEpochs = 1, MaxNewTokens = 10, Temperature = T, PtxCoef = 0,
            Critic = CriticKind.ValueHead, ActorOptimizer = Constant,
        };
        var log = new MetricsLog(null);
        new PpoTrainer(policy, reference, null, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config) { Metrics = log }.Train(Prompts, []);
        AssertSamplerDistribution(log.Rows.Single());
    }

    [Theory]
    [InlineData(AdvantageEstimator.Grpo)]
    [InlineData(AdvantageEstimator.Rloo)]
    public void Group_rl_at_temperature_trains_on_the_samplers_log_probs(AdvantageEstimator estimator)
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var reference = policy.Clone();
        var config = new GroupRlConfig
        {
            Estimator = estimator, Steps = 1, PromptsPerStep = 2, GroupSize = 4, MaxNewTokens = 10, MiniBatchSize = 8, Epochs = 1,
            Temperature = T, Beta = 0.04, RewardKlCoef = 0.05, Optimizer = Constant,
        };
        var log = new MetricsLog(null);
        new GroupRlTrainer(policy, reference, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, config) { Metrics = log }.Train(Prompts);
        AssertSamplerDistribution(log.Rows.Single());
    }
}
