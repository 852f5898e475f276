using RlhfSharp.Algorithms.A2c;
using RlhfSharp.Algorithms.Nlpo;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// NLPO's masked action space (RL4LMs nlpo.py, causal_policy.py): tokens outside the masking policy's top-p set get no
/// probability in rollouts and in the loss, and the masking policy is refreshed every target_update_iterations batches.
/// A2C on the same trainer takes one optimizer step per rollout batch.
/// </summary>
public sealed class NlpoMaskTests
{
    static readonly int[][] Prompts = Enumerable.Range(0, 8).Select(i => (int[])[1, 403 + i % 4]).ToArray();

    static Tensor Score(SampleBatch b)
    {
        var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
        return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1) * 10;
    }

    static void Perturb(CausalLM model, int seed, double scale)
    {
        manual_seed(seed);
        using var _ = no_grad();
        foreach (var p in model.parameters()) p.add_(randn_like(p) * scale);
    }

    [Fact]
    public void Rollout_tokens_stay_in_the_masking_policys_top_p_set_and_are_drawn_from_the_renormalised_distribution()
    {
        using var scope = NewDisposeScope();
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var masking = new MaskingPolicy(policy, new NlpoConfig { TopMask = 0.3, MinTokensToKeep = 1 }, [2]);
        Perturb(policy, 3, 0.05); // the actor drifts from its masking copy, as between refreshes
        var sampler = new Sampler(policy) { EosIds = [2], PadId = 0 };
        var (ids, mask) = sampler.LeftPad([.. Prompts, .. Prompts]);
        var options = new SamplingOptions { MaxNewTokens = 24, Seed = 11 };
        using var recorder = masking.NewRollout();
        using var rollout = sampler.Sample(ids, mask, options, tokenMask: recorder);
        int p = rollout.PromptLength, n = (int)rollout.ResponseMask.shape[1];
        var allowed = recorder.Recorded();
        var tokens = rollout.Sequences.narrow(1, p, n);
        var valid = rollout.ResponseMask.gt(0.5);
        Assert.Equal([16L, n, policy.Config.VocabSize], allowed.shape);
        // The mask bites: on average far fewer than half the vocabulary is allowed.
        Assert.True(allowed.to(float32).sum(-1).mean().item<float>() < policy.Config.VocabSize / 4.0);

        // Every sampled token is in its step's allowed set.
        var taken = allowed.gather(2, tokens.unsqueeze(-1)).squeeze(-1);
        Assert.True(taken.logical_or(valid.logical_not()).all().item<bool>(), "a rollout token outside the top-p set");

        // The sets recorded step by step (KV cache) are the masking policy's top-p sets of the finished sequences.
        var recomputed = masking.Allowed(rollout.Sequences, rollout.AttentionMask, p - 1, n);
        var same = recomputed.eq(allowed).all(-1).logical_or(valid.logical_not());
        Assert.True(same.all().item<bool>(), "recorded mask differs from the full-sequence mask");

        // The sampler's log-probs are of the masked, renormalised actor: probability 0 outside the set (HF's sampling from
        // scores filled with −∞ by RL4LMs' logits processor).
        var logits = policy.Forward(rollout.Sequences, rollout.AttentionMask, Transformer.PositionsFromMask(rollout.AttentionMask)).narrow(1, p - 1, n);
        var masked = logits.masked_fill(allowed.logical_not(), float.MinValue).log_softmax(-1).gather(2, tokens.unsqueeze(-1)).squeeze(-1);
        var diff = ((masked - rollout.Logprobs).abs() * rollout.ResponseMask).max().item<float>();
        Assert.True(diff < 1e-4, $"sampler log-probs differ from the masked distribution by {diff}");

        // Control: the same sampling without the mask leaves the set, so the assertions above can fail.
        using var free = sampler.Sample(ids, mask, options);
        int m = (int)free.ResponseMask.shape[1];
        var freeAllowed = masking.Allowed(free.Sequences, free.AttentionMask, p - 1, m);
        var freeTaken = freeAllowed.gather(2, free.Sequences.narrow(1, p, m).unsqueeze(-1)).squeeze(-1);
        Assert.False(freeTaken.logical_or(free.ResponseMask.lt(0.5)).all().item<bool>(), "unmasked sampling never left the set");
    }

    [Fact]
    public void Masked_logprobs_keep_the_unmasked_probability_of_allowed_tokens_and_give_forbidden_ones_log_eps()
    {
        // RL4LMs' MaskableCategorical does not renormalise log_prob (distributions.py: logits = probs_to_logits of the masked
        // probabilities): the ratio of an allowed token is the unmasked one's, and a forbidden token is a constant log eps.
        using var scope = NewDisposeScope();
        manual_seed(5);
        var logits = (randn(2, 3, 9) * 2).requires_grad_();
        var allowed = rand(2, 3, 9).gt(0.5);
        allowed = allowed.index_fill(2, tensor(new long[] { 4 }), true); // token 4 always allowed
        allowed = allowed.index_fill(2, tensor(new long[] { 6 }), false); // token 6 never
        var ids = full(new long[] { 2, 3 }, 4L, dtype: ScalarType.Int64);
        var logprobs = MaskedActionSpace.Logprobs(logits, ids, allowed);
        var raw = logits.detach().log_softmax(-1);
        Assert.True((logprobs.detach() - raw.gather(2, ids.unsqueeze(-1)).squeeze(-1)).abs().max().item<float>() < 1e-6);
        // Control: renormalising over the allowed set would differ by the log of its mass, far above the tolerance.
        var mass = raw.exp().masked_fill(allowed.logical_not(), 0).sum(-1).log();
        Assert.True(mass.abs().min().item<float>() > 1e-2);
        logprobs.sum().backward();
        Assert.True(logits.grad!.abs().max().item<float>() > 0);

        var forbidden = MaskedActionSpace.Logprobs(logits.detach(), full(new long[] { 2, 3 }, 6L, dtype: ScalarType.Int64), allowed);
        Assert.True((forbidden - Math.Log(Math.Pow(2, -23))).abs().max().item<float>() < 1e-5);
        var entropy = MaskedActionSpace.Entropy(logits.detach(), allowed);
        Assert.True(entropy.isfinite().all().item<bool>() && entropy.gt(0).all().item<bool>());
    }

    [Fact]
    public void Masking_policy_is_refreshed_after_every_target_update_iterations_rollout_batches()
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var masking = new MaskingPolicy(policy, new NlpoConfig { TargetUpdateIterations = 3 }, [2]);
        var copy = masking.Modules["mask_policy"];
        string name = policy.named_parameters().First(p => p.parameter.dim() == 2).name;
        float Gap() => (copy.named_parameters().Single(p => p.name == name).parameter - policy.named_parameters().Single(p => p.name == name).parameter)
            .abs().max().item<float>();
        var refreshed = new List<int>();
        for (int step = 0; step < 7; step++)
        {
            Perturb(policy, 100 + step, 0.01); // the update of the previous batch
            Assert.True(Gap() > 0);
            masking.AfterRollout(step);
            if (Gap() == 0) refreshed.Add(step);
        }
        // RL4LMs: iteration (1-based) % target_update_iterations == 0 → after batches 3 and 6 (steps 2 and 5).
        Assert.Equal([2, 5], refreshed);
        Assert.Equal(2, masking.Refreshes);
    }

    static (Dictionary<string, double> Row, PpoTrainer Trainer) Train(PpoConfig config, IActionSpaceMask? space = null,
        Func<Tensor, Tensor, Tensor, Tensor, PolicyLossOutput>? policyLoss = null, Func<Tensor, Tensor, Tensor, Tensor, ValueLossOutput>? valueLoss = null,
        CausalLM? policyIn = null)
    {
        var policy = policyIn ?? Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var reference = policy.Clone();
        var log = new MetricsLog(null);
        var trainer = new PpoTrainer(policy, reference, null, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config)
        {
            Metrics = log, ActionSpace = space, PolicyLoss = policyLoss, ValueLoss = valueLoss, Stage = space is null ? "a2c" : "nlpo",
        };
        trainer.Train(Prompts, []);
        if (policyIn is null) policy.Dispose();
        return (log.Rows[^1], trainer);
    }

    static PpoConfig Tiny(int steps) => new()
    {
        Steps = steps, RolloutBatchSize = 8, MiniBatchSize = 4, PpoEpochs = 2, MaxNewTokens = 10, PtxCoef = 0, Critic = CriticKind.ValueHead,
        ActorOptimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
    };

    [Fact]
    public void Nlpo_trainer_trains_on_the_masked_distribution_it_sampled_from_and_refreshes_on_schedule()
    {
        using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        using var masking = new MaskingPolicy(policy, new NlpoConfig { TopMask = 0.3, MinTokensToKeep = 1, TargetUpdateIterations = 2 }, [2]);
        var (row, _) = Train(Tiny(4), masking, policyIn: policy);
        // Old log-probs are RL4LMs' masked log-probs, which are not renormalised: they differ from the sampler's (drawn from
        // the renormalised set) by the log of the allowed set's mass, far more than float noise.
        Assert.True(row["logprobs_diff_sampler"] > 1e-2, $"logprobs_diff_sampler {row["logprobs_diff_sampler"]}");
        Assert.True(double.IsFinite(row["policy_loss"]) && double.IsFinite(row["entropy"]));
        Assert.Equal(2, masking.Refreshes); // after batches 2 and 4
    }

    [Fact]
    public void Nlpo_resumed_after_a_refresh_restores_the_masking_policy_and_ends_with_the_uninterrupted_weights()
    {
        string dir = Path.Combine(Path.GetTempPath(), "nlpo-resume-" + Guid.NewGuid().ToString("N"));
        var nlpo = new NlpoConfig { TopMask = 0.3, MinTokensToKeep = 1, TargetUpdateIterations = 2 };
        var config = Tiny(4) with { SaveEvery = 0 };
        Dictionary<string, Tensor> Run(StageState? state, int cancelAfter)
        {
            using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
            using var reference = policy.Clone();
            using var masking = new MaskingPolicy(policy, nlpo, [2]);
            using var cancel = new CancellationTokenSource();
            var trainer = new PpoTrainer(policy, reference, null, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config)
            {
                ActionSpace = masking, Stage = "nlpo",
                Progress = new ProgressOf(p => { if (p.Step == cancelAfter) cancel.Cancel(); }),
            };
            try { trainer.Train(Prompts, [], state, cancel.Token); }
            catch (OperationCanceledException) { return []; }
            return policy.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        }
        try
        {
            var whole = Run(null, -1);
            var state = new StageState(dir);
            // Stopped after step 2: the masking policy was refreshed after step 2's rollouts, so the fresh copy a resumed
            // process makes of the loaded weights is not the one step 3 must mask with.
            Assert.Empty(Run(state, 2));
            Assert.Equal(2, state.SavedStep);
            var resumed = Run(new StageState(dir), -1);
            Assert.Equal(whole.Keys.Order(), resumed.Keys.Order());
            foreach (var (name, w) in whole) Assert.True(w.eq(resumed[name]).all().item<bool>(), name);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }

    sealed class ProgressOf(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Fact]
    public void A2c_takes_one_unclipped_optimizer_step_per_rollout_batch()
    {
        var a2c = new A2cConfig();
        var config = a2c.Apply(Tiny(3) with { EmaBeta = 0.9 }); // the EMA counts actor optimizer steps
        var (row, trainer) = Train(config, policyLoss: (lp, old, adv, m) => A2cLoss.Policy(lp, old, adv, m), valueLoss: (v, _, r, m) => A2cLoss.Value(v, r, m));
        Assert.Equal(3, trainer.EmaUpdates);
        Assert.Equal(0, row["clipfrac"]);
        Assert.Equal(0, row["value_clipfrac"]);
        // PPO's settings on the same budget: 2 epochs × 2 minibatches per batch.
        var (_, ppo) = Train(Tiny(3) with { EmaBeta = 0.9 });
        Assert.Equal(3 * 2 * 2, ppo.EmaUpdates);
    }
}
