using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Lora;

/// <summary>
/// LoRA dropout (0.05 by default) is off where log-probs are compared (TRL disable_dropout=True; OpenRLHF lora_dropout=0):
/// PPO's old log-probs come from eval mode and its new ones from train mode, so with dropout on the first minibatch's
/// ratio is not 1.
/// </summary>
public sealed class LoraDropoutTests
{
    [Fact]
    public void Ppo_with_lora_starts_each_batch_at_ratio_one()
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        manual_seed(4);
        LoraModel.Attach(policy, new LoraConfig { TargetModules = ["all-linear"] }); // dropout: PEFT-style default 0.05
        // Adapters that already learned something (B ≠ 0), as on every step after the first; at B = 0 dropout changes nothing.
        using (no_grad())
            foreach (var (_, adapter) in LoraModel.Adapters(policy))
                foreach (var slice in adapter.Slices) slice.Pair.lora_B.normal_(0, 0.05);
        using var reference = policy.WithoutAdapters();
        var config = new PpoConfig
        {
            Steps = 1, RolloutBatchSize = 8, MiniBatchSize = 8, PpoEpochs = 1, MaxNewTokens = 10, PtxCoef = 0, Critic = CriticKind.ValueHead,
            ActorOptimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
        };
        Tensor Score(SampleBatch b) => b.ResponseMask.sum(1);
        var log = new MetricsLog(null);
        new PpoTrainer(policy, reference, null, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config) { Metrics = log }
            .Train(Enumerable.Range(0, 8).Select(i => (int[])[1, 403 + i % 4]).ToArray(), []);
        var row = log.Rows.Single();
        Assert.True(row["approx_kl"] <= 1e-7, $"approx_kl {row["approx_kl"]}: dropout made the first minibatch's ratio differ from 1");
        Assert.Equal(0.0, row["clipfrac"]);
    }
}
