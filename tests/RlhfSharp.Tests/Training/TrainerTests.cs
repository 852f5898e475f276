using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>Each trainer, a few steps on the real stories260K model, does what its objective says.</summary>
public sealed class TrainerTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-train-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static CausalLM Stories() => Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);

    // "Once upon a time" → a fixed odd continuation the base model would not write.
    static readonly int[] Prompt = [1, 403, 407, 261, 378];
    static readonly int[] Target = [300, 301, 302, 303, 304, 305, 2];
    static SftExample Demo() => new([.. Prompt, .. Target], [.. Prompt.Select(_ => false), .. Target.Select(_ => true)]);

    [Fact]
    public void Sft_loss_counts_only_response_tokens_and_training_learns_the_demonstration()
    {
        using var model = Stories();
        var config = new SftConfig { Epochs = 30, BatchSize = 2, Optimizer = new OptimizerConfig { LearningRate = 3e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } };
        var trainer = new SftTrainer(model, config, padId: 0);
        var examples = new[] { Demo(), Demo() };

        // Evaluate equals the mean NLL of the 7 target tokens only, computed by hand.
        var before = trainer.Evaluate(examples)["eval_loss"];
        using (no_grad())
        {
            var ids = tensor(Demo().InputIds.Select(x => (long)x).ToArray()).unsqueeze(0);
            var lp = model.Forward(ids).log_softmax(-1)[0];
            double nll = 0;
            for (int t = Prompt.Length; t < ids.shape[1]; t++) nll -= lp[t - 1, Demo().InputIds[t]].item<float>();
            Assert.Equal(nll / Target.Length, before, 4);
        }
        var after = trainer.Train(examples, examples)["eval_loss"];
        Assert.True(after < before * 0.2, $"eval loss {before:F3} → {after:F3}");
        var greedy = new Sampler(model) { EosIds = [2] }.Generate([Prompt], new SamplingOptions { Temperature = 0, MaxNewTokens = 10 })[0];
        Assert.Equal(Target, greedy.NewIds);
    }

    [Fact]
    public void Reward_model_learns_a_ranking_and_normalises_demonstrations_to_zero_mean()
    {
        using var lm = Stories();
        string sftDir = Path.Combine(tmp, "sft");
        HuggingFaceCheckpoint.Save(lm, sftDir);
        manual_seed(1); // the new score head's initialisation
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(sftDir, allowNewHead: true);
        // Better = more copies of token 300 in the response.
        var rng = new Random(1);
        RankedGroup Group()
        {
            int[] Response(int count) => Enumerable.Range(0, 8).Select(i => i < count ? 300 : 270 + rng.Next(20)).OrderBy(_ => rng.Next()).ToArray();
            return new RankedGroup(new[] { 3, 2, 1, 0 }.Select(c => Prompt.Concat(Response(c)).ToArray()).ToList());
        }
        var train = Enumerable.Range(0, 48).Select(_ => Group()).ToList();
        var eval = Enumerable.Range(0, 16).Select(_ => Group()).ToList();
        var trainer = new RewardTrainer(rm, new RewardConfig { Epochs = 3, PromptsPerBatch = 8, Optimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0 } }, padId: 0);
        var result = trainer.Train(train, eval);
        Assert.True(result["eval_accuracy"] > 0.9, $"eval accuracy {result["eval_accuracy"]:F3}");

        var demos = train.Select(g => g.Sequences[1]).ToList();
        trainer.NormalizeOn(demos);
        using var scope = NewDisposeScope();
        var batch = TokenBatch.RightPad(demos, 0, CPU);
        Assert.InRange(rm.Rewards(batch.Ids, batch.AttentionMask).mean().item<float>(), -1e-3, 1e-3);

        // The offset travels with the checkpoint, in OpenRLHF's config keys.
        string rmDir = Path.Combine(tmp, "rm");
        HuggingFaceCheckpoint.Save(rm, rmDir);
        using var reloaded = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        Assert.Equal(rm.RewardMean, reloaded.RewardMean);
    }

    [Fact]
    public void Reward_model_gradient_accumulation_is_one_step_of_the_larger_batch()
    {
        // 8 rankings of 4 in one step: prompts_per_batch 8, or 4 with gradient_accumulation 2 (micro-batches whose
        // summed losses over the step's 8 prompts add up to the big batch's K-wise loss).
        var rng = new Random(2);
        var groups = Enumerable.Range(0, 8).Select(_ => new RankedGroup(Enumerable.Range(0, 4)
            .Select(_ => Prompt.Concat(Enumerable.Range(0, 6).Select(_ => 270 + rng.Next(40))).ToArray()).ToList())).ToList();
        (Dictionary<string, double> Row, Tensor Head) OneStep(int promptsPerBatch, int accumulation)
        {
            using var lm = Stories();
            string dir = Path.Combine(tmp, $"rm-ga{accumulation}");
            HuggingFaceCheckpoint.Save(lm, dir);
            using var rm = HuggingFaceCheckpoint.LoadScoreModel(dir, allowNewHead: true);
            // The new head from a generator of its own: parallel tests draw from torch's global one.
            using (no_grad()) rm.score.weight!.copy_(randn(rm.score.weight!.shape, generator: new Generator(1)) * 0.02);
            var log = new MetricsLog(null);
            var config = new RewardConfig
            {
                Epochs = 1, PromptsPerBatch = promptsPerBatch,
                Optimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant, GradientAccumulation = accumulation },
            };
            new RewardTrainer(rm, config, padId: 0) { Metrics = log }.Train(groups, []);
            return (log.Rows.Single(), rm.score.weight!.detach().clone());
        }
        var (big, bigHead) = OneStep(8, 1);
        var (accumulated, accumulatedHead) = OneStep(4, 2);
        Assert.Equal(big["loss"], accumulated["loss"], 5);
        Assert.Equal(big["accuracy"], accumulated["accuracy"]);
        Assert.Equal(big["grad_norm"], accumulated["grad_norm"], 4);
        Assert.True(bigHead.allclose(accumulatedHead, rtol: 1e-4, atol: 1e-6));
    }

    [Fact]
    public void Packed_sft_trains_on_blocks_and_still_learns_the_demonstration()
    {
        using var model = Stories();
        var config = new SftConfig { Epochs = 40, BatchSize = 2, MaxLength = 16, Packing = true, Optimizer = new OptimizerConfig { LearningRate = 3e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } };
        var trainer = new SftTrainer(model, config, padId: 0, eosId: 2);
        var examples = new[] { Demo(), Demo(), Demo() }; // 3 × 12 tokens (each already ends in EOS) → blocks of 16
        var before = trainer.Evaluate([Demo()])["eval_loss"];
        var log = new MetricsLog(null);
        new SftTrainer(model, config, padId: 0, eosId: 2) { Metrics = log }.Train(examples, [Demo()]);
        Assert.Equal(40 * 2, log.Rows.Count); // 36 tokens → blocks of 16, 16, 4 → two steps of batch 2 per epoch
        Assert.True(trainer.Evaluate([Demo()])["eval_loss"] < before * 0.3);
    }

    [Fact]
    public void Pairwise_margin_enters_the_reward_loss_as_minus_logsigmoid_of_gap_minus_margin()
    {
        using var lm = Stories();
        string dir = Path.Combine(tmp, "margin");
        HuggingFaceCheckpoint.Save(lm, dir);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(dir, allowNewHead: true);
        int[] a = [.. Prompt, 300, 301], b = [.. Prompt, 270, 271];
        var trainer = new RewardTrainer(rm, new RewardConfig(), padId: 0);
        var plain = trainer.Evaluate([new RankedGroup([a, b])])["eval_loss"];
        var withMargin = trainer.Evaluate([new RankedGroup([a, b], Margin: 1.5)])["eval_loss"];
        using var _ = no_grad();
        var batch = TokenBatch.RightPad([a, b], 0, CPU);
        var s = rm.Forward(batch.Ids, batch.AttentionMask).select(1, 0).data<float>().ToArray();
        double Nls(double x) => Math.Log(1 + Math.Exp(-x));
        Assert.Equal(Nls(s[0] - s[1]), plain, 5);
        Assert.Equal(Nls(s[0] - s[1] - 1.5), withMargin, 5);
    }

    [Theory]
    [InlineData(CriticKind.SeparateFromRewardModel)]
    [InlineData(CriticKind.ValueHead)]
    public void Ppo_raises_a_simple_reward_and_keeps_kl_finite(CriticKind kind)
    {
        using var policy = Stories();
        using var reference = policy.Clone();
        string dir = Path.Combine(tmp, "sft-" + kind);
        HuggingFaceCheckpoint.Save(policy, dir);
        manual_seed(2); // the critic's new head and the value head start the same on every run
        using var critic = kind == CriticKind.SeparateFromRewardModel ? HuggingFaceCheckpoint.LoadScoreModel(dir, allowNewHead: true) : null;
        // Reward: the fraction of response tokens that are token 261 (" a"), which the base model writes sometimes.
        Tensor Score(SampleBatch b)
        {
            var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
            return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1) * 10;
        }
        var config = new PpoConfig
        {
            Steps = 12, RolloutBatchSize = 16, MiniBatchSize = 8, PpoEpochs = 2, MaxNewTokens = 16, InitKlCoef = 0.01, PtxCoef = 0, Critic = kind,
            ActorOptimizer = new OptimizerConfig { LearningRate = 2e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
            CriticOptimizer = new OptimizerConfig { LearningRate = 2e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
            EmaBeta = 0.9,
        };
        var log = new MetricsLog(null);
        var trainer = new PpoTrainer(policy, reference, critic, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config) { Metrics = log };
        var prompts = Enumerable.Range(0, 32).Select(i => (int[])[1, 403 + i % 5]).ToArray();
        trainer.Train(prompts, []);
        var rewards = log.Rows.Select(r => r["reward_mean"]).ToList();
        double first = rewards.Take(3).Average(), last = rewards.TakeLast(3).Average();
        Assert.True(last > first + 0.5, $"reward {first:F2} → {last:F2}");
        Assert.All(log.Rows, r => Assert.True(double.IsFinite(r["kl"]) && double.IsFinite(r["value_loss"]) && r["clipfrac"] >= 0));
        Assert.NotNull(trainer.Ema);
    }
}

public sealed class RejectionSamplingTrainerTests
{
    [Fact]
    public void Best_of_n_rounds_raise_the_mean_reward_of_the_policys_own_samples()
    {
        using var policy = RlhfSharp.Checkpoints.Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        // Reward: the fraction of response tokens that are token 261 (" a"), as in the PPO test.
        Tensor Score(SampleBatch b)
        {
            var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
            return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1);
        }
        var config = new RlhfSharp.Algorithms.RejectionSampling.RejectionSamplingConfig
        {
            Iterations = 4, PromptsPerIteration = 16, SamplesPerPrompt = 8, MaxNewTokens = 16,
            Sft = new SftConfig { Epochs = 2, BatchSize = 8, Optimizer = new OptimizerConfig { LearningRate = 2e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } },
        };
        var log = new MetricsLog(null);
        var trainer = new RlhfSharp.Algorithms.RejectionSampling.RejectionSamplingTrainer(policy, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, 2, config) { Metrics = log };
        trainer.Train(Enumerable.Range(0, 32).Select(i => (int[])[1, 403 + i % 5]).ToArray());
        Assert.Equal(4, log.Rows.Count);
        Assert.All(log.Rows, r => Assert.True(r["reward_best_mean"] >= r["reward_mean"]));
        Assert.True(log.Rows[^1]["reward_mean"] > log.Rows[0]["reward_mean"] + 0.05, $"{log.Rows[0]["reward_mean"]:F3} → {log.Rows[^1]["reward_mean"]:F3}");
    }
}

public sealed class OnlineDpoTrainerTests
{
    [Fact]
    public void Rounds_of_self_sampled_pairs_labelled_by_the_reward_raise_the_policys_reward()
    {
        using var policy = RlhfSharp.Checkpoints.Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var reference = policy.Clone();
        Tensor Score(SampleBatch b)
        {
            var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
            return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1);
        }
        var config = new RlhfSharp.Algorithms.OnlineDpo.OnlineDpoConfig
        {
            Iterations = 4, PromptsPerIteration = 32, MaxNewTokens = 16, Temperature = 1.0,
            Dpo = new RlhfSharp.Algorithms.Preference.DpoConfig { Epochs = 2, BatchSize = 8, Beta = 0.1, Optimizer = new OptimizerConfig { LearningRate = 2e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } },
        };
        var log = new MetricsLog(null);
        var trainer = new RlhfSharp.Algorithms.OnlineDpo.OnlineDpoTrainer(policy, reference, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config) { Metrics = log };
        trainer.Train(Enumerable.Range(0, 32).Select(i => (int[])[1, 403 + i % 5]).ToArray());
        Assert.Equal(4, log.Rows.Count);
        Assert.All(log.Rows, r => Assert.True(r["pairs"] > 0));
        Assert.True(log.Rows[^1]["reward_mean"] > log.Rows[0]["reward_mean"] + 0.03, $"{log.Rows[0]["reward_mean"]:F3} → {log.Rows[^1]["reward_mean"]:F3}");
    }
}
