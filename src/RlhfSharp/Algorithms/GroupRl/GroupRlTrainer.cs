using System.Diagnostics;
using RlhfSharp.Algorithms.Common;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Distributed;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.GroupRl;

/// <summary>
/// Online critic-free RL (GRPO, RLOO, REINFORCE++, REINFORCE++-baseline, ReMax) in one flat loop: sample G
/// completions per prompt in one left-padded batch → score → advantages from a baseline that needs no value model →
/// PPO-clipped policy loss (ε low/high) plus an optional k3 KL loss to the frozen reference, for a few epochs of
/// gradient-accumulated micro-batches. TRL's GRPOTrainer and OpenRLHF's experience maker in CleanRL's shape.
/// The policy and the reference are seen through PPO's <see cref="IPpoActor"/>, so an encoder-decoder (T5,
/// <see cref="Seq2SeqActor"/>: prompt to the encoder, the group's samples from the decoder) trains in the same loop.
/// </summary>
public sealed class GroupRlTrainer : StageTrainer
{
    readonly IPpoActor policy, reference;
    readonly Func<SampleBatch, Tensor> score;
    readonly GroupRlConfig config;

    /// <summary>Extra numbers to log for each rollout batch (e.g. a hidden gold score the policy never sees).</summary>
    public Func<SampleBatch, IReadOnlyDictionary<string, double>>? RolloutMetrics { get; init; }

    /// <param name="score">Scores each completion (B), e.g. the reward model at the last real token.</param>
    public GroupRlTrainer(CausalLM policy, CausalLM reference, Func<SampleBatch, Tensor> score, Sampler sampler, GroupRlConfig config)
        : this(new CausalActor(policy, sampler, config.LogprobChunkSize), new CausalActor(reference, logprobChunkSize: config.LogprobChunkSize), score, config) { }

    /// <param name="policy">The trained policy, with its sampler.</param>
    /// <param name="reference">The frozen reference; it may be the policy's own module with its adapters off.</param>
    /// <param name="score">Scores each completion (B).</param>
    public GroupRlTrainer(IPpoActor policy, IPpoActor reference, Func<SampleBatch, Tensor> score, GroupRlConfig config)
    {
        config.Validate("grpo");
        this.policy = policy; this.reference = reference; this.score = score; this.config = config;
        if (policy is not CausalActor) config.RefuseLogprobChunks("grpo", "an encoder-decoder (T5) policy's head is read whole");
        if (!ReferenceEquals(reference.Module, policy.Module))
        {
            reference.Module.eval();
            foreach (var p in reference.Module.parameters()) p.requires_grad = false;
        }
        LoraModel.DisableDropout(policy.Module); // old log-probs (eval mode) and new ones (train mode) must be the same function
    }

    /// <summary>
    /// Log-probs (B, N) of the N response tokens of rollout rows at the sampling temperature (TRL's grpo_trainer
    /// _get_per_token_logps: logits /= temperature), and the forward pass they come from.
    /// </summary>
    (Tensor Logprobs, ActorForward Forward) ResponseLogprobs(IPpoActor actor, Tensor seq, Tensor attention, Tensor positions, int p, int n, bool keepEntropy = false) =>
        ResponseLogprobs(actor, seq, attention, positions, p, n, config.Temperature, keepEntropy);

    /// <summary>The log-probs (B, <paramref name="n"/>) of rollout rows' response tokens under <paramref name="actor"/> at
    /// <paramref name="temperature"/>, and its forward pass; rows as <see cref="SampleBatch.Sequences"/> lays them out.</summary>
    /// <param name="keepEntropy">Chunked log-probs: compute the entropies (<see cref="ActorForward.Entropy"/>) in the same pass.</param>
    public static (Tensor Logprobs, ActorForward Forward) ResponseLogprobs(IPpoActor actor, Tensor seq, Tensor attention, Tensor positions,
        int promptLength, int n, double temperature, bool keepEntropy = false)
    {
        var f = actor.Forward(seq, attention, positions, promptLength, withHidden: false);
        return (f.Logprobs(n, temperature, keepEntropy), f);
    }

    /// <summary>Rows of the rollout batch that one optimizer step consumes.</summary>
    int RowsPerUpdate => config.MiniBatchSize * config.Optimizer.GradientAccumulation;

    public Dictionary<string, double> Train(IReadOnlyList<int[]> prompts, StageState? state = null, CancellationToken cancel = default)
    {
        string stage = config.StageName;
        if (prompts.Count == 0) throw new RlhfException($"{stage}: no prompts.");
        int perStep = Math.Min(config.PromptsPerStep, prompts.Count);
        int rows = perStep * config.GroupSize;
        int updatesPerStep = config.Epochs * ((rows + RowsPerUpdate - 1) / RowsPerUpdate);
        using var optimizer = new Optimizer(policy.Module.parameters(), config.Optimizer, config.Steps * updatesPerStep);
        var loop = new StepLoop
        {
            Stage = stage, TotalSteps = config.Steps, State = state, SaveEvery = config.SaveEvery, Metrics = Metrics, Progress = Progress,
            Modules = new Dictionary<string, nn.Module> { ["policy"] = policy.Module }, Optimizers = new Dictionary<string, Optimizer> { ["policy"] = optimizer },
        };
        var last = loop.Run((step, row) =>
        {
            var chosen = SeededOrder.OnlineBatch(prompts, perStep, step, config.Seed);

            using var _ = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            policy.Module.eval();
            // Group-major: the G copies of a prompt sit next to each other, as every estimator's view(-1, G) expects.
            // Under mpirun each rank samples its shard of the prompts (whole groups, so group baselines stay exact), rows
            // [offset, offset + G·shard) of the step's batch, with its own seed; rank 0's is the single-process seed.
            var mine = DataParallel.Shard(chosen);
            int offset = DataParallel.ShardStart(chosen.Count) * config.GroupSize;
            using var rollout = policy.Rollout(mine.SelectMany(prompt => Enumerable.Repeat(prompt, config.GroupSize)).ToList(), new SamplingOptions
            {
                MaxNewTokens = config.MaxNewTokens, Temperature = config.Temperature, TopP = config.TopP,
                Seed = config.Seed + (ulong)step * 7919 + (ulong)DataParallel.Rank * 1_000_003,
            }, tokenMask: null);
            using var greedy = config.Estimator == AdvantageEstimator.Remax ? GreedyRollout(mine) : null;
            double generateSeconds = clock.Elapsed.TotalSeconds;
            var extra = RolloutMetrics?.Invoke(rollout);

            clock.Restart();
            var exp = MakeExperience(rollout, greedy);
            double scoreSeconds = clock.Elapsed.TotalSeconds;

            clock.Restart();
            policy.Module.train();
            var sums = new Dictionary<string, double>();
            int updates = 0;
            var rng = new Random((int)((config.Seed + (ulong)step) % int.MaxValue));
            for (int epoch = 0; epoch < config.Epochs; epoch++)
            {
                // The global batch's rows, shuffled alike on every rank; each rank trains the rows of an update it holds.
                var shuffled = Enumerable.Range(0, rows).ToArray();
                rng.Shuffle(shuffled);
                for (int u = 0; u < rows; u += RowsPerUpdate)
                {
                    var part = Update(exp, shuffled.Skip(u).Take(RowsPerUpdate).ToArray(), offset, optimizer);
                    foreach (var (k, v) in part) sums[k] = sums.GetValueOrDefault(k) + v;
                    updates++;
                }
            }
            double trainSeconds = clock.Elapsed.TotalSeconds;

            foreach (var (k, v) in exp.Stats) row[k] = v;
            foreach (var (k, v) in sums) row[k] = v / Math.Max(1, updates);
            foreach (var (k, v) in extra ?? new Dictionary<string, double>()) row[k] = v;
            row["lr"] = optimizer.LearningRate;
            row["skipped_steps"] = optimizer.SkippedSteps;
            row["time_generate"] = generateSeconds; row["time_score"] = scoreSeconds; row["time_train"] = trainSeconds;
            row["tokens_per_s"] = row["response_length"] * rows / Math.Max(1e-9, generateSeconds);
        }, cancel);
        policy.Module.eval();
        return last;
    }

    /// <summary>ReMax's baseline rollout: one greedy completion per prompt (Li et al. 2023, Algorithm 1, line 5).</summary>
    // No scope of its own: a seq2seq rollout's tensors move to the caller's scope, the step's, which disposes them.
    SampleBatch GreedyRollout(IReadOnlyList<int[]> chosen) =>
        policy.Rollout(chosen, new SamplingOptions { MaxNewTokens = config.MaxNewTokens, Temperature = 0 }, tokenMask: null);

    /// <summary>A scored rollout ready for updates; its tensors live in the caller's (the step's) dispose scope.</summary>
    sealed record GroupExperience(Tensor Sequences, Tensor AttentionMask, Tensor Positions, Tensor ActionMask, Tensor OldLogprobs,
        Tensor? RefLogprobs, Tensor Advantages, int PromptLength, Dictionary<string, double> Stats);

    GroupExperience MakeExperience(SampleBatch rollout, SampleBatch? greedy)
    {
        using var _ = no_grad();
        int p = rollout.PromptLength, n = (int)rollout.ResponseMask.shape[1];
        var seq = rollout.Sequences;
        var attention = rollout.AttentionMask;
        var positions = Transformer.PositionsFromMask(attention);
        var mask = rollout.ResponseMask.to(float32);
        // Recomputed rather than taken from the sampler (a full forward without the KV cache is what the update compares
        // against), at the sampling temperature as TRL's grpo_trainer (_get_per_token_logps: logits /= temperature).
        var oldLogprobs = ResponseLogprobs(policy, seq, attention, positions, p, n).Logprobs.contiguous();
        var refLogprobs = ResponseLogprobs(reference, seq, attention, positions, p, n).Logprobs.contiguous();
        var scores = score(rollout).to(float32).reshape(-1).clamp(-config.RewardClip, config.RewardClip);
        var greedyScores = greedy is null ? null : score(greedy).to(float32).reshape(-1).clamp(-config.RewardClip, config.RewardClip);
        var kl = KlEstimator.K1(oldLogprobs, refLogprobs) * mask;
        // The baseline must carry the same KL penalty as the sampled rewards: without it every advantage is lowered by
        // β·KL, each step pushes down every sampled token, and the KL grows without bound (seen: 25 → 118 nats in 10 steps).
        var greedyRewards = greedy is null ? null : greedyScores! - config.RewardKlCoef * SequenceKl(greedy);
        // Batch scaling divides by the std of the step's whole batch: under mpirun every rank's scores, as TRL's
        // grpo_trainer gathers the rewards of all processes before it takes the std (scale_rewards="batch").
        bool batchScaled = config.Estimator == AdvantageEstimator.Grpo && config.RewardScaling == RewardScaling.Batch;
        double? batchStd = batchScaled && DataParallel.World is not null ? AcrossRanks.Std(scores) : null;
        var adv = CriticFreeAdvantages.Compute(config.Estimator, scores, kl, mask, config.GroupSize, config.RewardKlCoef, config.RewardScaling, greedyRewards, batchStd);

        var stats = DataParallel.World is null ? new Dictionary<string, double>
        {
            ["reward_mean"] = scores.mean().item<float>(),
            ["reward_std"] = scores.numel() > 1 ? scores.std().item<float>() : 0,
            ["advantage_std"] = mask.sum().item<float>() > 1 ? MaskedStats.MaskedVar(adv.Advantages, mask).sqrt().item<float>() : 0,
            ["zero_std_fraction"] = adv.ZeroStdFraction,
            ["kl"] = kl.sum(1).mean().item<float>(),
            ["response_length"] = mask.sum(1).mean().item<float>(),
            ["finished_fraction"] = rollout.FinishReasons.Count(r => r == FinishReason.Stop) / (double)rollout.FinishReasons.Length,
            // As PPO's: the trained log-probs against the sampler's, float noise at top_p = 1.
            ["logprobs_diff_sampler"] = ((oldLogprobs - rollout.Logprobs).abs() * mask).sum().item<float>() / Math.Max(1, mask.sum().item<float>()),
        } : GlobalStatistics(scores, adv, mask, kl, rollout, oldLogprobs);
        if (batchScaled) stats["reward_scale"] = batchStd ?? scores.std(unbiased: true).item<float>(); // the std the advantages were divided by
        if (adv.Baselines is not null) stats["baseline_mean"] = DataParallel.Sum(adv.Baselines.sum().item<float>())[0] / DataParallel.Sum(adv.Baselines.numel())[0];
        if (greedyScores is not null) stats["greedy_score_mean"] = DataParallel.Sum(greedyScores.sum().item<float>())[0] / DataParallel.Sum(greedyScores.numel())[0];
        return new GroupExperience(seq, attention, positions, mask, oldLogprobs, config.Beta > 0 ? refLogprobs : null, adv.Advantages, p, stats);
    }

    /// <summary>The rollout diagnostics of the step's whole batch under mpirun, from sums over every rank's rows.</summary>
    Dictionary<string, double> GlobalStatistics(Tensor scores, CriticFreeAdvantagesOutput adv, Tensor mask, Tensor kl, SampleBatch rollout, Tensor oldLogprobs)
    {
        using var scope = NewDisposeScope();
        var s64 = scores.to(float64);
        var a = adv.Advantages.to(float64) * mask;
        var local = stack([s64.sum(), s64.square().sum(), mask.sum().to(float64), a.sum(), (a.square() * mask).sum(), kl.sum().to(float64),
                ((oldLogprobs - rollout.Logprobs).abs() * mask).sum().to(float64)])
            .cpu().data<double>().ToArray();
        int groups = (int)(scores.shape[0] / config.GroupSize);
        var s = DataParallel.Sum([.. local[..6], scores.shape[0], adv.ZeroStdFraction * groups, groups, rollout.FinishReasons.Count(r => r == FinishReason.Stop), local[6]]);
        double rows = s[6], tokens = s[2], mean = s[0] / rows, advMean = s[3] / Math.Max(1, tokens);
        return new Dictionary<string, double>
        {
            ["reward_mean"] = mean,
            ["reward_std"] = rows > 1 ? Math.Sqrt(Math.Max(0, (s[1] - rows * mean * mean) / (rows - 1))) : 0,
            ["advantage_std"] = tokens > 1 ? Math.Sqrt(Math.Max(0, (s[4] - tokens * advMean * advMean) / (tokens - 1))) : 0,
            ["zero_std_fraction"] = s[7] / Math.Max(1, s[8]),
            ["kl"] = s[5] / rows,
            ["response_length"] = tokens / rows,
            ["finished_fraction"] = s[9] / rows,
            ["logprobs_diff_sampler"] = s[10] / Math.Max(1, tokens),
        };
    }

    /// <summary>Σ_t k1 of each row of a rollout against the reference, [B] (for ReMax's greedy baseline).</summary>
    Tensor SequenceKl(SampleBatch b)
    {
        int p = b.PromptLength, n = (int)b.ResponseMask.shape[1];
        var positions = Transformer.PositionsFromMask(b.AttentionMask);
        var logprobs = ResponseLogprobs(policy, b.Sequences, b.AttentionMask, positions, p, n).Logprobs;
        var refLogprobs = ResponseLogprobs(reference, b.Sequences, b.AttentionMask, positions, p, n).Logprobs;
        return (KlEstimator.K1(logprobs, refLogprobs) * b.ResponseMask.to(float32)).sum(1);
    }

    /// <summary>
    /// One optimizer step over <paramref name="chunk"/> (rows of the step's global batch), in micro-batches whose losses
    /// share the step's denominator. Each rank trains the rows it holds (local row = global − <paramref name="offset"/>);
    /// the denominator counts every rank's, so the all-reduced gradient is the single-process one.
    /// </summary>
    Dictionary<string, double> Update(GroupExperience exp, int[] chunk, int offset, Optimizer optimizer)
    {
        using var scope = NewDisposeScope();
        var device = exp.Sequences.device;
        long held = exp.Sequences.shape[0];
        var rows = chunk.Where(g => g >= offset && g < offset + held).Select(g => g - offset).ToArray();
        var all = tensor(rows.Select(r => (long)r).ToArray(), device: device);
        double stepTokens = rows.Length == 0 ? 0 : exp.ActionMask.index_select(0, all).sum().item<float>();
        if (DataParallel.World is not null) stepTokens = DataParallel.Sum(stepTokens)[0];
        int p = exp.PromptLength, n = (int)exp.ActionMask.shape[1];
        double loss = 0, klLoss = 0, clip = 0, approxKl = 0, entropy = 0;
        int micro = 0;
        for (int m = 0; m < rows.Length; m += config.MiniBatchSize, micro++)
        {
            using var microScope = NewDisposeScope();
            var index = tensor(rows.Skip(m).Take(config.MiniBatchSize).Select(r => (long)r).ToArray(), device: device);
            Tensor Pick(Tensor t) => t.index_select(0, index);
            var seq = Pick(exp.Sequences);
            var mask = Pick(exp.ActionMask);
            var (logprobs, forward) = ResponseLogprobs(policy, seq, Pick(exp.AttentionMask), Pick(exp.Positions), p, n, keepEntropy: true);
            var aux = RouterBalanceLoss.Weighted(policy.Module);
            var pol = PpoLoss.Policy(logprobs, Pick(exp.OldLogprobs), Pick(exp.Advantages), mask, config.ClipEpsLow, clipEpsHigh: config.ClipEpsHigh);
            var perToken = pol.PerTokenLoss;
            if (exp.RefLogprobs is not null)
            {
                // k3 is unbiased and non-negative; TRL's per_token_kl is the same expression (DeepSeekMath Eq. 4).
                var k3 = KlEstimator.K3(logprobs, Pick(exp.RefLogprobs));
                perToken = perToken + config.Beta * k3;
                klLoss += MaskedStats.MaskedMean(k3.detach(), mask).item<float>();
            }
            var microLoss = GroupRlLoss.Aggregate(perToken, mask, config.LossAggregation, stepTokens, chunk.Length, config.MaxNewTokens);
            // The router's loss of this micro-batch's forward, weighted by its rows' share of the step's.
            (aux is null ? microLoss : microLoss + aux * ((double)index.shape[0] / chunk.Length)).backward();
            loss += microLoss.item<float>();
            clip += pol.ClipFraction.item<float>();
            approxKl += pol.ApproxKl.item<float>();
            using (no_grad()) entropy += MaskedStats.MaskedMean(forward.Entropy(n, config.Temperature), mask).item<float>();
        }
        double gradNorm = optimizer.Apply();
        if (DataParallel.World is not null)
        {
            var s = DataParallel.Sum(loss, clip, approxKl, entropy, klLoss, micro);
            (loss, clip, approxKl, entropy, klLoss, micro) = (s[0], s[1], s[2], s[3], s[4], (int)s[5]);
        }
        micro = Math.Max(1, micro);
        var result = new Dictionary<string, double>
        {
            ["grad_norm"] = gradNorm,
            // The step's loss is the sum of its micro-batches' shares.
            ["policy_loss"] = loss,
            ["clipfrac"] = clip / micro,
            ["approx_kl"] = approxKl / micro,
            ["entropy"] = entropy / micro,
        };
        if (exp.RefLogprobs is not null) result["kl_loss"] = klLoss / micro;
        return result;
    }
}
