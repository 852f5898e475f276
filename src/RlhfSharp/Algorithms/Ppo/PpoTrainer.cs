using System.Diagnostics;
using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Common;
using RlhfSharp.Data;
using RlhfSharp.Distributed;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// PPO against a reward with a per-token KL penalty to the SFT model (Ziegler et al. 2019; Stiennon et al. 2020;
/// InstructGPT §3.5), in OpenRLHF's arrangement: sample → score → KL-shaped rewards → GAE → clipped policy and value
/// losses for a few epochs of minibatches, plus PPO-ptx and an optional EMA of the actor. The actor is an
/// <see cref="IPpoActor"/>: a decoder-only model (<see cref="CausalActor"/>) or an encoder-decoder whose value head sits
/// on the decoder (<see cref="Seq2SeqActor"/>); only sampling and the forward pass differ between them. So it is for the
/// critic (<see cref="IPpoCritic"/>: <see cref="CausalCritic"/> or RL4LMs' T5 value model <see cref="Seq2SeqCritic"/>) and
/// the PPO-ptx examples (<see cref="IPtxExamples"/>).
/// </summary>
public sealed class PpoTrainer : StageTrainer
{
    readonly IPpoActor actor, referenceActor;
    readonly IPpoCritic? critic;
    readonly ValueHead? valueHead;
    readonly Func<SampleBatch, Tensor> score;
    readonly PpoConfig config;
    readonly int padId;

    /// <summary>Extra numbers to log for each rollout batch (e.g. a hidden gold score the policy never sees).</summary>
    public Func<SampleBatch, IReadOnlyDictionary<string, double>>? RolloutMetrics { get; init; }
    /// <summary>The EMA of the actor (a <see cref="CausalLM"/> or a T5, as the actor), when <see cref="PpoConfig.EmaBeta"/> is set.</summary>
    public nn.Module? Ema { get; private set; }
    /// <summary>How many times this run updated <see cref="Ema"/>: once per actor optimizer step.</summary>
    public int EmaUpdates { get; private set; }

    /// <summary>The stage's name in progress reports (<c>ppo</c>; <c>nlpo</c>, <c>a2c</c> for the algorithms built on this trainer).</summary>
    public string Stage { get; init; } = "ppo";
    /// <summary>
    /// The actor's loss on a minibatch from (logprobs, oldLogprobs, advantages, actionMask): PPO's clipped surrogate
    /// (<see cref="PpoLoss.Policy"/>) unless an algorithm supplies its own (A2C's policy gradient).
    /// </summary>
    public Func<Tensor, Tensor, Tensor, Tensor, PolicyLossOutput>? PolicyLoss { get; init; }
    /// <summary>The critic's loss from (values, oldValues, returns, actionMask): PPO's clipped value loss unless supplied.</summary>
    public Func<Tensor, Tensor, Tensor, Tensor, ValueLossOutput>? ValueLoss { get; init; }
    /// <summary>
    /// A restricted action space (NLPO's masking policy): the tokens each rollout position may take, applied again to the
    /// actor's distribution in the old log-probs and in the loss. Null: the whole vocabulary, as PPO.
    /// </summary>
    public IActionSpaceMask? ActionSpace { get; init; }

    /// <param name="score">Scores each rollout (B), e.g. the reward model at the last real token.</param>
    /// <param name="critic">The critic for <see cref="CriticKind.SeparateFromRewardModel"/>; null for a value head.</param>
    public PpoTrainer(CausalLM policy, CausalLM reference, ScoreModel? critic, Func<SampleBatch, Tensor> score, Sampler sampler, int padId, PpoConfig config)
        : this(new CausalActor(policy, sampler, config.LogprobChunkSize), new CausalActor(reference, logprobChunkSize: config.LogprobChunkSize),
            critic is null ? null : new CausalCritic(critic), score, padId, config) { }

    /// <param name="reference">The frozen reference; it may be the policy's own module with its LoRA adapters off.</param>
    /// <param name="critic">The critic for <see cref="CriticKind.SeparateFromRewardModel"/>; null for a value head.</param>
    public PpoTrainer(IPpoActor policy, IPpoActor reference, IPpoCritic? critic, Func<SampleBatch, Tensor> score, int padId, PpoConfig config)
    {
        actor = policy; referenceActor = reference;
        this.critic = critic; this.score = score; this.padId = padId; this.config = config;
        config.Validate("ppo");
        if (config.Critic == CriticKind.SeparateFromRewardModel && critic is null)
            throw new RlhfException("PPO: the critic kind is 'separate' but no critic model was given.");
        if (policy is not CausalActor) config.RefuseLogprobChunks("ppo", "an encoder-decoder (T5) policy's head is read whole");
        if (config.Critic == CriticKind.ValueHead)
        {
            var (dtype, device) = policy.Placement;
            // The new head starts the same on every run, so runs are repeatable; drawn from its own generator, not the
            // global one another thread may be drawing from.
            valueHead = new ValueHead(policy.HiddenSize, (long)config.Seed);
            valueHead.to(dtype).to(device);
        }
        if (!ReferenceEquals(reference.Module, policy.Module))
        {
            reference.Module.eval();
            foreach (var p in reference.Module.parameters()) p.requires_grad = false;
        }
        // Old log-probs and values come from eval mode, new ones from train mode: the same function only without dropout.
        LoraModel.DisableDropout(policy.Module);
        if (critic is not null) LoraModel.DisableDropout(critic.Module);
    }

    /// <summary>Trains a decoder-only actor; <paramref name="ptx"/> are PPO-ptx's demonstrations (empty: no ptx term).</summary>
    public Dictionary<string, double> Train(IReadOnlyList<int[]> prompts, IReadOnlyList<SftExample> ptx, StageState? state = null, CancellationToken cancel = default)
    {
        if (ptx.Count > 0 && actor is not CausalActor)
            throw new RlhfException("PPO: an encoder-decoder actor's PPO-ptx examples are (prompt, target) pairs: pass Seq2SeqPtxExamples.");
        return Train(prompts, ptx.Count == 0 ? null : new CausalPtxExamples(((CausalActor)actor).Model, ptx, padId, config.LogprobChunkSize), state, cancel);
    }

    /// <summary>Trains the actor (and critic); <paramref name="ptx"/> are PPO-ptx's examples in the actor's form (null: no ptx term).</summary>
    public Dictionary<string, double> Train(IReadOnlyList<int[]> prompts, IPtxExamples? ptx, StageState? state = null, CancellationToken cancel = default)
    {
        if (prompts.Count == 0) throw new RlhfException("PPO: no prompts.");
        if (ActionSpace is not null) config.RefuseLogprobChunks("ppo", "NLPO's masked action space reads the full logits of every position");
        int batch = Math.Min(config.RolloutBatchSize, prompts.Count);
        int updatesPerStep = config.PpoEpochs * ((batch + config.MiniBatchSize - 1) / config.MiniBatchSize);
        var actorParams = actor.Module.parameters().Concat(valueHead?.parameters() ?? []);
        using var actorOpt = new Optimizer(actorParams, config.ActorOptimizer, config.Steps * updatesPerStep);
        using var criticOpt = critic is null ? null : new Optimizer(critic.Module.parameters(), config.CriticOptimizer, config.Steps * updatesPerStep);
        var kl = new KlController(config.InitKlCoef, config.KlTargetPerToken ?? config.KlTargetPerSequence, config.KlHorizon);
        if (config.EmaBeta is not null) Ema = actor.CloneModule();

        var modules = new Dictionary<string, nn.Module> { ["policy"] = actor.Module };
        if (critic is not null) modules["critic"] = critic.Module;
        if (valueHead is not null) modules["value_head"] = valueHead;
        if (Ema is not null) modules["ema"] = Ema;
        foreach (var (name, module) in ActionSpace?.Modules ?? new Dictionary<string, nn.Module>()) modules[name] = module;
        var optimizers = new Dictionary<string, Optimizer> { ["policy"] = actorOpt };
        if (criticOpt is not null) optimizers["critic"] = criticOpt;
        var loop = new StepLoop
        {
            Stage = Stage, TotalSteps = config.Steps, State = state, SaveEvery = config.SaveEvery, Metrics = Metrics, Progress = Progress,
            Modules = modules, Optimizers = optimizers,
            SaveExtra = () => new JsonObject { ["kl_coef"] = kl.Coef },
            RestoreExtra = extra => kl.Restore(extra?["kl_coef"]?.GetValue<double>() ?? config.InitKlCoef),
        };
        var last = loop.Run((step, row) =>
        {
            var chosen = SeededOrder.OnlineBatch(prompts, batch, step, config.Seed);

            var clock = Stopwatch.StartNew();
            using var _ = NewDisposeScope();
            // Under mpirun each rank samples its shard of the step's prompts (rows [offset, offset + shard) of the batch)
            // with its own seed; rank 0's is the single-process seed.
            int offset = DataParallel.ShardStart(chosen.Count);
            actor.Module.eval();
            using var recorder = ActionSpace?.NewRollout();
            using var rollout = actor.Rollout(DataParallel.Shard(chosen), new SamplingOptions
            {
                MaxNewTokens = config.MaxNewTokens, Temperature = config.Temperature, TopP = config.TopP,
                Seed = config.Seed + (ulong)step * 7919 + (ulong)DataParallel.Rank * 1_000_003,
            }, recorder);
            double generateSeconds = clock.Elapsed.TotalSeconds;
            var extra = RolloutMetrics?.Invoke(rollout);
            clock.Restart();
            using var exp = MakeExperience(rollout, kl.Coef, recorder?.Recorded());
            double scoreSeconds = clock.Elapsed.TotalSeconds;
            ActionSpace?.AfterRollout(step);
            clock.Restart();

            actor.Module.train(); critic?.Module.train();
            var sums = new Dictionary<string, double>();
            int updates = 0;
            var rng = new Random((int)((config.Seed + (ulong)step) % int.MaxValue));
            for (int epoch = 0; epoch < config.PpoEpochs; epoch++)
            {
                // Minibatches are drawn from the global batch's rows with the same generator on every rank; each rank
                // trains the rows it holds, so the updates are the single-process ones.
                var rows = Enumerable.Range(0, chosen.Count).ToArray();
                rng.Shuffle(rows);
                bool stop = false;
                for (int m = 0; m < rows.Length; m += config.MiniBatchSize)
                {
                    var part = TrainMinibatch(exp, rows.Skip(m).Take(config.MiniBatchSize).ToArray(), offset, ptx, actorOpt, criticOpt, rng);
                    foreach (var (k, v) in part) sums[k] = sums.GetValueOrDefault(k) + v;
                    updates++;
                    if (config.EarlyStopKl is double target && part["approx_kl"] > 1.5 * target) { stop = true; break; }
                }
                if (stop) break;
            }
            double trainSeconds = clock.Elapsed.TotalSeconds;

            var stats = Statistics(exp, rollout);
            kl.Update(config.KlTargetPerToken is not null ? stats["kl_per_token"] : stats["kl"], chosen.Count);

            foreach (var (k, v) in stats) row[k] = v;
            foreach (var (k, v) in sums) row[k] = v / Math.Max(1, updates);
            foreach (var (k, v) in extra ?? new Dictionary<string, double>()) row[k] = v;
            row["kl_coef"] = kl.Coef;
            row["skipped_steps"] = actorOpt.SkippedSteps + (criticOpt?.SkippedSteps ?? 0);
            row["lr_actor"] = actorOpt.LearningRate;
            row["time_generate"] = generateSeconds; row["time_score"] = scoreSeconds; row["time_train"] = trainSeconds;
            row["tokens_per_s"] = stats["response_length"] * chosen.Count / Math.Max(1e-9, generateSeconds);
        }, cancel);
        actor.Module.eval(); critic?.Module.eval();
        return last;
    }

    /// <summary>Log-probs, values, scores, KL-shaped rewards and GAE for a rollout, without gradients.</summary>
    /// <param name="allowed">The rollout's allowed tokens (B, N, V) under a restricted action space, else null.</param>
    Experience MakeExperience(SampleBatch rollout, double klCoef, Tensor? allowed)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int p = rollout.PromptLength, n = (int)rollout.ResponseMask.shape[1];
        var seq = rollout.Sequences;
        var attention = rollout.AttentionMask;
        var positions = Transformer.PositionsFromMask(attention);
        var mask = rollout.ResponseMask;

        // Each forward in its own scope, keeping only what the experience needs: TorchSharp frees a forward's intermediates
        // (every layer's activations, the B×T×V logits) only when their scope ends, and four models' worth held to the end
        // of this method was most of a PPO step's peak memory.
        int start;
        Tensor oldLogprobs, rawLogprobs, refLogprobs, values, scores;
        Tensor? hidden;
        using (NewDisposeScope())
        {
            // At the rollouts' temperature (OpenRLHF models/actor.py), so the ratio is of the policy that sampled.
            var forward = actor.Forward(seq, attention, positions, p, withHidden: valueHead is not null);
            start = forward.Start;
            rawLogprobs = forward.Logprobs(n, config.Temperature).MoveToOuterDisposeScope();
            // Under a masked action space the ratio is of masked distributions, while the KL penalty keeps the unmasked
            // log-probs (RL4LMs alg_wrappers.py: old log_prob is forward_policy's masked log_probs, kl_div = raw_log_probs − ref).
            oldLogprobs = allowed is null ? rawLogprobs
                : MaskedActionSpace.Logprobs(forward.Logits.narrow(1, start, n), forward.Tokens.narrow(1, start + 1, n), allowed, config.Temperature).MoveToOuterDisposeScope();
            hidden = forward.Hidden?.MoveToOuterDisposeScope();
        }
        using (NewDisposeScope()) refLogprobs = referenceActor.Forward(seq, attention, positions, p, withHidden: false).Logprobs(n, config.Temperature).MoveToOuterDisposeScope();
        using (NewDisposeScope()) values = (Values(seq, attention, positions, p, start, n, hidden) * mask).MoveToOuterDisposeScope();
        using (NewDisposeScope()) scores = score(rollout).to(float32).reshape(-1).MoveToOuterDisposeScope();
        var kl = KlEstimator.PerToken(rawLogprobs, refLogprobs, config.KlEstimator) * mask;
        var rewards = KlShapedReward.Compute(scores, kl, mask, klCoef, (-config.RewardClip, config.RewardClip));
        var (advantages, returns) = GaeEstimator.Compute(values, rewards, mask, config.Gamma, config.Lambda);
        if (config.WhitenAdvantages && AcrossRanks.Count(mask) > 1) advantages = AcrossRanks.MaskedWhiten(advantages, mask) * mask;

        return new Experience
        {
            Sequences = seq.clone().MoveToOuterDisposeScope(), AttentionMask = attention.clone().MoveToOuterDisposeScope(),
            Positions = positions.MoveToOuterDisposeScope(), ActionMask = mask.clone().MoveToOuterDisposeScope(),
            OldLogprobs = oldLogprobs.contiguous().MoveToOuterDisposeScope(), RefLogprobs = refLogprobs.contiguous().MoveToOuterDisposeScope(),
            Values = values.MoveToOuterDisposeScope(), Scores = scores.MoveToOuterDisposeScope(), Kl = kl.MoveToOuterDisposeScope(),
            Rewards = rewards.MoveToOuterDisposeScope(), Advantages = advantages.MoveToOuterDisposeScope(), Returns = returns.MoveToOuterDisposeScope(),
            PromptLength = p,
            // Positions after a row finished allow every token, so their (masked-out) log-probs stay finite.
            AllowedTokens = allowed?.logical_or(mask.unsqueeze(-1).lt(0.5)).MoveToOuterDisposeScope(),
        };
    }

    /// <summary>The values (B, n) of the states that choose response tokens: the critic's, or the value head's on the
    /// policy's last hidden state (from position <paramref name="start"/>).</summary>
    Tensor Values(Tensor seq, Tensor attention, Tensor positions, int promptLength, int start, int n, Tensor? policyHidden) => critic is not null
        ? critic.Values(seq, attention, positions, promptLength, n)
        : valueHead!.forward(policyHidden!).narrow(1, start, n);

    /// <summary>
    /// One update on the minibatch <paramref name="chunk"/> (rows of the global batch). Each rank trains the rows it holds
    /// (local row = global − <paramref name="offset"/>) with its loss weighted by its share of the minibatch's tokens (or
    /// sequences), so the all-reduced gradient is the minibatch's; PPO-ptx examples are drawn for the whole minibatch from
    /// the shared generator and split the same way. Returns the minibatch's diagnostics, summed over the ranks.
    /// </summary>
    Dictionary<string, double> TrainMinibatch(Experience exp, int[] chunk, int offset, IPtxExamples? ptx, Optimizer actorOpt, Optimizer? criticOpt, Random rng)
    {
        using var scope = NewDisposeScope();
        var device = exp.Sequences.device;
        var rows = chunk.Where(g => g >= offset && g < offset + exp.Rows).Select(g => (long)(g - offset)).ToArray();
        var index = tensor(rows, device: device);
        Tensor Pick(Tensor t) => t.index_select(0, index);
        int p = exp.PromptLength, n = exp.ResponseLength;
        double local = rows.Length == 0 ? 0 : config.Reduction == LossReduction.TokenMean ? Pick(exp.ActionMask).sum().item<float>() : rows.Length;
        double global = DataParallel.World is null ? local : DataParallel.Sum(local)[0];
        double share = global > 0 ? local / global : 0;

        Tensor? actorLoss = null;
        // Each weighted by this rank's share of the minibatch (ptx_loss: the rank's own), so the sums over the ranks are the minibatch's.
        var metrics = new Dictionary<string, double>
        {
            ["policy_loss"] = 0, ["value_loss"] = 0, ["clipfrac"] = 0, ["approx_kl"] = 0, ["entropy"] = 0, ["value_clipfrac"] = 0, ["ptx_loss"] = 0,
        };
        Tensor? seq = null, attention = null, positions = null, mask = null;
        if (rows.Length > 0)
        {
            seq = Pick(exp.Sequences); attention = Pick(exp.AttentionMask); positions = Pick(exp.Positions);
            mask = Pick(exp.ActionMask);
        }
        bool withPtx = config.PtxCoef > 0 && ptx is { Count: > 0 };
        var result = new Dictionary<string, double>();
        // The actor's forward, loss, backward and optimizer step in a scope of their own: its logits and loss terms are
        // freed before a separate critic's forward starts, instead of living alongside it to the end of the minibatch.
        using (NewDisposeScope())
        {
            ActorForward? forward = null;
            if (rows.Length > 0)
            {
                forward = actor.Forward(seq!, attention!, positions!, p, withHidden: valueHead is not null);
                int start = forward.Start;
                var aux = RouterBalanceLoss.Weighted(actor.Module);
                Tensor logprobs, tokenEntropy;
                if (exp.AllowedTokens is null)
                {
                    logprobs = forward.Logprobs(n, config.Temperature, keepEntropy: true);
                    tokenEntropy = forward.Entropy(n, config.Temperature);
                }
                else
                {
                    var allowed = Pick(exp.AllowedTokens);
                    logprobs = MaskedActionSpace.Logprobs(forward.Logits.narrow(1, start, n), forward.Tokens.narrow(1, start + 1, n), allowed, config.Temperature);
                    tokenEntropy = MaskedActionSpace.Entropy(forward.Logits.narrow(1, start, n), allowed, config.Temperature);
                }
                var pol = PolicyLoss is null
                    ? PpoLoss.Policy(logprobs, Pick(exp.OldLogprobs), Pick(exp.Advantages), mask!, config.ClipEps, config.Reduction)
                    : PolicyLoss(logprobs, Pick(exp.OldLogprobs), Pick(exp.Advantages), mask!);
                var entropy = MaskedStats.MaskedMean(tokenEntropy, mask!);
                // OpenRLHF ppo_actor.py: actor_loss + aux_loss * aux_loss_coef, weighted like the rest by this rank's share.
                actorLoss = (aux is null ? pol.Loss : pol.Loss + aux) * share;
                metrics["policy_loss"] = pol.Loss.item<float>() * share;
                metrics["clipfrac"] = pol.ClipFraction.item<float>() * share;
                metrics["approx_kl"] = pol.ApproxKl.item<float>() * share;
                metrics["entropy"] = entropy.item<float>() * share;
            }

            if (withPtx)
            {
                var drawn = Enumerable.Range(0, Math.Min(chunk.Length, ptx!.Count)).Select(_ => rng.Next(ptx.Count)).ToList();
                double ptxTokens = Math.Max(1, drawn.Sum(ptx.LossTokens));
                var examples = DataParallel.Shard(drawn);
                if (examples.Count > 0)
                {
                    var logLikelihood = ptx.LogLikelihood(examples);
                    var ptxAux = RouterBalanceLoss.Weighted(actor.Module);
                    var ptxLoss = -logLikelihood / ptxTokens;
                    // OpenRLHF: ptx_coef · (ptx_loss + aux_loss · aux_loss_coef), the router's term of this rank's examples.
                    var ptxTerm = ptxAux is null ? ptxLoss : ptxLoss + ptxAux * ((double)examples.Count / drawn.Count);
                    actorLoss = actorLoss is null ? config.PtxCoef * ptxTerm : actorLoss + config.PtxCoef * ptxTerm;
                    metrics["ptx_loss"] = ptxLoss.item<float>();
                }
            }

            if (valueHead is not null && rows.Length > 0)
            {
                var values = valueHead.forward(forward!.Hidden!).narrow(1, forward.Start, n);
                var value = Value(values, Pick(exp.Values), Pick(exp.Returns), mask!);
                actorLoss = actorLoss! + config.ValueCoef * value.Loss * share;
                metrics["value_loss"] = value.Loss.item<float>() * share;
                metrics["value_clipfrac"] = value.ClipFraction.item<float>() * share;
            }
            actorLoss?.backward();
            result["grad_norm_actor"] = actorOpt.Apply();
            UpdateEma();
        }
        if (valueHead is null)
        {
            if (rows.Length > 0)
            {
                var values = critic!.Values(seq!, attention!, positions!, p, n);
                // A critic with experts adds its router's loss too (OpenRLHF ppo_critic.py: critic_loss + aux_loss * aux_loss_coef).
                var aux = RouterBalanceLoss.Weighted(critic.Module);
                var value = Value(values, Pick(exp.Values), Pick(exp.Returns), mask!);
                ((aux is null ? value.Loss : value.Loss + aux) * share).backward();
                metrics["value_loss"] = value.Loss.item<float>() * share;
                metrics["value_clipfrac"] = value.ClipFraction.item<float>() * share;
            }
            result["grad_norm_critic"] = criticOpt!.Apply();
        }
        // Every rank gets the same numbers, so early stopping on approx_kl stops them all at the same update.
        if (DataParallel.World is not null) metrics = DataParallel.Sum(metrics);
        if (!withPtx) metrics.Remove("ptx_loss");
        foreach (var (k, v) in metrics) result[k] = v;
        return result;
    }

    ValueLossOutput Value(Tensor values, Tensor oldValues, Tensor returns, Tensor mask) => ValueLoss is null
        ? PpoLoss.Value(values, oldValues, returns, mask, config.ValueClip, config.Reduction)
        : ValueLoss(values, oldValues, returns, mask);

    /// <summary>Rollout diagnostics of the step's batch, from sums over every rank's rows (all-reduced under mpirun).</summary>
    static Dictionary<string, double> Statistics(Experience exp, SampleBatch rollout)
    {
        using var scope = NewDisposeScope();
        var mask = exp.ActionMask;
        var scores = exp.Scores.to(float64);
        var returns = exp.Returns.to(float64) * mask;
        var residual = (exp.Returns - exp.Values).to(float64) * mask;
        var local = stack([
            scores.sum(), scores.square().sum(), (exp.Kl * mask).sum().to(float64), mask.sum().to(float64),
            returns.sum(), (returns.square() * mask).sum(), residual.sum(), (residual.square() * mask).sum(),
            ((exp.OldLogprobs - rollout.Logprobs).abs() * mask).sum().to(float64),
            ((exp.Kl * mask).sum(1) / mask.sum(1).clamp_min(1)).sum().to(float64),
        ]).cpu().data<double>().ToArray();
        var s = DataParallel.Sum([.. local[..8], rollout.FinishReasons.Length, rollout.FinishReasons.Count(r => r == FinishReason.Stop), local[8], local[9]]);
        double rows = s[8], tokens = Math.Max(1, s[3]);
        double scoreMean = s[0] / rows;
        // The biased masked variances of TRL's explained variance: E[x²] − E[x]².
        double returnVar = s[5] / tokens - Math.Pow(s[4] / tokens, 2), residualVar = s[7] / tokens - Math.Pow(s[6] / tokens, 2);
        return new Dictionary<string, double>
        {
            ["reward_mean"] = scoreMean,
            ["reward_std"] = rows > 1 ? Math.Sqrt(Math.Max(0, (s[1] - rows * scoreMean * scoreMean) / (rows - 1))) : double.NaN,
            ["kl"] = s[2] / rows,
            // OpenRLHF's status["kl"]: each response's masked mean over its tokens, averaged over the responses.
            ["kl_per_token"] = s[11] / rows,
            ["response_length"] = s[3] / rows,
            ["explained_variance"] = 1 - residualVar / Math.Max(1e-8, returnVar),
            ["return_mean"] = s[4] / tokens,
            ["finished_fraction"] = s[9] / rows,
            // How far the log-probs PPO trains on are from the sampler's (verl's rollout_probs_diff): float noise when
            // top_p = 1, as both are of logits / temperature; larger with top-k/top-p, whose truncation PPO does not see.
            ["logprobs_diff_sampler"] = s[10] / tokens,
        };
    }

    /// <summary>
    /// One EMA step after each actor optimizer step, as OpenRLHF's <c>ppo_actor.py</c> (<c>training_step</c>: the
    /// <c>moving_average</c> right after <c>optimizer_step</c>), not once per rollout batch.
    /// </summary>
    void UpdateEma()
    {
        if (Ema is null) return;
        double beta = config.EmaBeta!.Value;
        EmaUpdates++;
        using var _ = no_grad();
        var current = actor.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, e) in Ema!.named_parameters()) e.mul_(beta).add_(current[name], alpha: 1 - beta);
    }
}
