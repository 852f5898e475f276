using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>PPO's EMA actor follows OpenRLHF's cadence (ppo_actor.py: one moving-average step per optimizer step).</summary>
public sealed class PpoEmaTests
{
    static Tensor Score(SampleBatch b)
    {
        var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
        return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1) * 10;
    }

    [Fact]
    public void Ema_is_updated_once_per_actor_optimizer_step_not_once_per_rollout_batch()
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var reference = policy.Clone();
        // 2 rollout batches × 2 epochs × (8 rows / minibatches of 4) = 8 optimizer steps.
        var config = new PpoConfig
        {
            Steps = 2, RolloutBatchSize = 8, MiniBatchSize = 4, PpoEpochs = 2, MaxNewTokens = 6, PtxCoef = 0, Critic = CriticKind.ValueHead,
            ActorOptimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
            EmaBeta = 0.9,
        };
        var trainer = new PpoTrainer(policy, reference, null, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config);
        trainer.Train(Enumerable.Range(0, 8).Select(i => (int[])[1, 403 + i % 4]).ToArray(), []);
        Assert.Equal(2 * 2 * 2, trainer.EmaUpdates);
    }

    /// <summary>
    /// One rollout batch, one minibatch, two epochs: two optimizer steps θ0 → θ1 → θ2. Per optimizer step the EMA is
    /// β²θ0 + β(1−β)θ1 + (1−β)θ2; once per rollout batch it would be βθ0 + (1−β)θ2. θ1 comes from the same run stopped
    /// after one epoch (same seed, same rollouts, constant learning rate).
    /// </summary>
    [Fact]
    public void Ema_weights_are_the_average_over_every_optimizer_step()
    {
        const double beta = 0.5;
        PpoConfig Config(int epochs) => new()
        {
            Steps = 1, RolloutBatchSize = 8, MiniBatchSize = 8, PpoEpochs = epochs, MaxNewTokens = 6, PtxCoef = 0, Critic = CriticKind.ValueHead,
            ActorOptimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
            EmaBeta = beta,
        };
        var prompts = Enumerable.Range(0, 8).Select(i => (int[])[1, 403 + i % 4]).ToArray();
        Dictionary<string, Tensor> Train(int epochs, bool ema)
        {
            using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
            using var reference = policy.Clone();
            var trainer = new PpoTrainer(policy, reference, null, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, Config(epochs));
            trainer.Train(prompts, []);
            var source = ema ? trainer.Ema! : policy;
            return source.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        }
        using var theta0 = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        var t0 = theta0.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach());
        var t1 = Train(1, ema: false);
        var t2 = Train(2, ema: false);
        var ema2 = Train(2, ema: true);
        Assert.Contains(t1.Keys, n => !t1[n].allclose(t2[n], rtol: 0, atol: 0)); // the second epoch moved the weights
        foreach (var (n, e) in ema2)
        {
            var expected = t0[n] * (beta * beta) + t1[n] * (beta * (1 - beta)) + t2[n] * (1 - beta);
            Assert.True(e.allclose(expected, rtol: 1e-5, atol: 1e-6), $"{n}: the EMA is not the per-optimizer-step average");
        }
    }
}
