using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// The adaptive KL controller compares the target with the KL in the target's own unit: per token (OpenRLHF's
/// kl_target, fed status["kl"], a per-token mean) or per sequence (Ziegler et al.; TRL PPOv1's target).
/// </summary>
public sealed class KlTargetUnitTests
{
    static Tensor Score(SampleBatch b) => b.ResponseMask.sum(1) * 0.1;
    static readonly int[][] Prompts = Enumerable.Range(0, 8).Select(i => (int[])[1, 403 + i % 4]).ToArray();
    const double InitKl = 0.05;

    static Dictionary<string, double> OneStep(PpoConfig overrides)
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var reference = policy.Clone();
        // A reference that differs from the policy, so the KL is not zero.
        // Its own generator: every call must perturb alike, and parallel tests draw from torch's global one.
        using var generator = new Generator(6);
        using (no_grad()) foreach (var p in reference.parameters()) p.add_(randn(p.shape, dtype: p.dtype, generator: generator) * 0.02);
        var config = overrides with
        {
            Steps = 1, RolloutBatchSize = 8, MiniBatchSize = 8, PpoEpochs = 1, MaxNewTokens = 12, PtxCoef = 0, Critic = CriticKind.ValueHead,
            InitKlCoef = InitKl, KlHorizon = 8,
            ActorOptimizer = new OptimizerConfig { LearningRate = 1e-4, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
        };
        var log = new MetricsLog(null);
        new PpoTrainer(policy, reference, null, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config) { Metrics = log }.Train(Prompts, []);
        return log.Rows.Single();
    }

    [Fact]
    public void Per_token_and_per_sequence_targets_each_read_the_kl_in_their_unit()
    {
        var probe = OneStep(new PpoConfig());
        double perToken = probe["kl_per_token"], perSequence = probe["kl"];
        Assert.True(perSequence > 2 * perToken && perToken > 0, $"kl {perSequence}, per token {perToken}");
        // A target between the two: above the per-token KL, below the per-sequence KL.
        double target = Math.Sqrt(perToken * perSequence);
        double Expected(double observed) => InitKl * (1 + Math.Clamp((observed - target) / target, -0.2, 0.2) * 8 / 8.0);

        var tokenRun = OneStep(new PpoConfig { KlTargetPerToken = target });
        Assert.Equal(perToken, tokenRun["kl_per_token"]); // same rollouts
        Assert.Equal(Expected(perToken), tokenRun["kl_coef"], 12);
        Assert.True(tokenRun["kl_coef"] < InitKl, "per-token KL is under the per-token target: β must fall");

        var sequenceRun = OneStep(new PpoConfig { KlTargetPerSequence = target });
        Assert.Equal(Expected(perSequence), sequenceRun["kl_coef"], 12);
        Assert.True(sequenceRun["kl_coef"] > InitKl, "per-sequence KL is over the per-sequence target: β must rise");
    }

    [Fact]
    public void Both_targets_at_once_is_an_error()
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var reference = policy.Clone();
        var e = Assert.Throws<RlhfException>(() => new PpoTrainer(policy, reference, null, Score, new Sampler(policy), 0,
            new PpoConfig { KlTargetPerToken = 0.1, KlTargetPerSequence = 6, Critic = CriticKind.ValueHead }));
        Assert.Contains("kl_target_per_token", e.Message);
    }
}
