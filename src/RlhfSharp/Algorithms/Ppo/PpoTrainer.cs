using System.Diagnostics;
using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Common;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// PPO against a reward with a per-token KL penalty to the SFT model (Ziegler et al. 2019; Stiennon et al. 2020;
/// InstructGPT §3.5), in OpenRLHF's arrangement: sample → score → KL-shaped rewards → GAE → clipped policy and value
/// losses for a few epochs of minibatches, plus PPO-ptx and an optional EMA of the actor.
/// </summary>
public sealed class PpoTrainer
{
    readonly CausalLM policy, reference;
    readonly ScoreModel? critic;
    readonly ValueHead? valueHead;
    readonly Func<SampleBatch, Tensor> score;
    readonly PpoConfig config;
    readonly Sampler sampler;
    readonly int padId;

    public IProgress<TrainingProgress>? Progress { get; init; }
    public MetricsLog? Metrics { get; init; }
    /// <summary>Extra numbers to log for each rollout batch (e.g. a hidden gold score the policy never sees).</summary>
    public Func<SampleBatch, IReadOnlyDictionary<string, double>>? RolloutMetrics { get; init; }
    /// <summary>The EMA of the actor, when <see cref="PpoConfig.EmaBeta"/> is set.</summary>
    public CausalLM? Ema { get; private set; }

    /// <param name="score">Scores each rollout (B), e.g. the reward model at the last real token.</param>
    /// <param name="critic">The critic for <see cref="CriticKind.SeparateFromRewardModel"/>; null for a value head.</param>
    public PpoTrainer(CausalLM policy, CausalLM reference, ScoreModel? critic, Func<SampleBatch, Tensor> score, Sampler sampler, int padId, PpoConfig config)
    {
        this.policy = policy; this.reference = reference; this.critic = critic; this.score = score;
        this.sampler = sampler; this.padId = padId; this.config = config;
        if (config.Critic == CriticKind.SeparateFromRewardModel && critic is null)
            throw new RlhfException("PPO: the critic kind is 'separate' but no critic model was given.");
        if (config.Critic == CriticKind.ValueHead)
        {
            var weight = policy.model.embed_tokens.weight!;
            torch.manual_seed((long)config.Seed); // the new head starts the same on every run, so runs are repeatable
            valueHead = new ValueHead(policy.Config.HiddenSize);
            valueHead.to(weight.dtype).to(weight.device);
        }
        reference.eval();
        foreach (var p in reference.parameters()) p.requires_grad = false;
    }

    public Dictionary<string, double> Train(IReadOnlyList<int[]> prompts, IReadOnlyList<SftExample> ptx, StageState? state = null, CancellationToken cancel = default)
    {
        if (prompts.Count == 0) throw new RlhfException("PPO: no prompts.");
        int batch = Math.Min(config.RolloutBatchSize, prompts.Count);
        int updatesPerStep = config.PpoEpochs * ((batch + config.MiniBatchSize - 1) / config.MiniBatchSize);
        var actorParams = policy.parameters().Concat(valueHead?.parameters() ?? []);
        using var actorOpt = new Optimizer(actorParams, config.ActorOptimizer, config.Steps * updatesPerStep);
        using var criticOpt = critic is null ? null : new Optimizer(critic.parameters(), config.CriticOptimizer, config.Steps * updatesPerStep);
        var kl = new KlController(config.InitKlCoef, config.KlTarget, config.KlHorizon);
        if (config.EmaBeta is not null) Ema = policy.Clone();

        var modules = new Dictionary<string, nn.Module> { ["policy"] = policy };
        if (critic is not null) modules["critic"] = critic;
        if (valueHead is not null) modules["value_head"] = valueHead;
        if (Ema is not null) modules["ema"] = Ema;
        var optimizers = new Dictionary<string, Optimizer> { ["policy"] = actorOpt };
        if (criticOpt is not null) optimizers["critic"] = criticOpt;
        int start = 0;
        if (state?.SavedStep is int saved)
        {
            state.Load(modules, optimizers);
            kl.Restore(state.SavedExtra?["kl_coef"]?.GetValue<double>() ?? config.InitKlCoef);
            start = saved;
        }

        var last = new Dictionary<string, double>();
        int stepsPerEpoch = Math.Max(1, prompts.Count / batch);
        for (int step = start; step < config.Steps; step++)
        {
            if (cancel.IsCancellationRequested)
            {
                state?.Save(step, modules, optimizers, new JsonObject { ["kl_coef"] = kl.Coef });
                cancel.ThrowIfCancellationRequested();
            }
            var order = SeededOrder.Permutation(prompts.Count, config.Seed + (ulong)(step / stepsPerEpoch));
            var chosen = Enumerable.Range((step % stepsPerEpoch) * batch, batch).Select(i => prompts[order[i % prompts.Count]]).ToList();

            var clock = Stopwatch.StartNew();
            using var _ = NewDisposeScope();
            var (ids, mask) = sampler.LeftPad(chosen);
            policy.eval();
            using var rollout = sampler.Sample(ids, mask, new SamplingOptions
            {
                MaxNewTokens = config.MaxNewTokens, Temperature = config.Temperature, TopP = config.TopP, Seed = config.Seed + (ulong)step * 7919,
            });
            double generateSeconds = clock.Elapsed.TotalSeconds;
            var extra = RolloutMetrics?.Invoke(rollout);
            clock.Restart();
            using var exp = MakeExperience(rollout, kl.Coef);
            double scoreSeconds = clock.Elapsed.TotalSeconds;
            clock.Restart();

            policy.train(); critic?.train();
            var sums = new Dictionary<string, double>();
            int updates = 0;
            var rng = new Random((int)((config.Seed + (ulong)step) % int.MaxValue));
            for (int epoch = 0; epoch < config.PpoEpochs; epoch++)
            {
                var rows = Enumerable.Range(0, exp.Rows).ToArray();
                rng.Shuffle(rows);
                bool stop = false;
                for (int m = 0; m < rows.Length; m += config.MiniBatchSize)
                {
                    var part = TrainMinibatch(exp, rows.Skip(m).Take(config.MiniBatchSize).ToArray(), ptx, actorOpt, criticOpt, rng);
                    foreach (var (k, v) in part) sums[k] = sums.GetValueOrDefault(k) + v;
                    updates++;
                    if (config.EarlyStopKl is double target && part["approx_kl"] > 1.5 * target) { stop = true; break; }
                }
                if (stop) break;
            }
            double trainSeconds = clock.Elapsed.TotalSeconds;

            var stats = Statistics(exp, rollout);
            kl.Update(stats["kl"], exp.Rows);
            if (Ema is not null) UpdateEma(config.EmaBeta!.Value);

            var row = new Dictionary<string, double> { ["step"] = step + 1 };
            foreach (var (k, v) in stats) row[k] = v;
            foreach (var (k, v) in sums) row[k] = v / Math.Max(1, updates);
            foreach (var (k, v) in extra ?? new Dictionary<string, double>()) row[k] = v;
            row["kl_coef"] = kl.Coef;
            row["skipped_steps"] = actorOpt.SkippedSteps + (criticOpt?.SkippedSteps ?? 0);
            row["lr_actor"] = actorOpt.LearningRate;
            row["time_generate"] = generateSeconds; row["time_score"] = scoreSeconds; row["time_train"] = trainSeconds;
            row["tokens_per_s"] = stats["response_length"] * exp.Rows / Math.Max(1e-9, generateSeconds);
            Metrics?.Write(row);
            Progress?.Report(new TrainingProgress("ppo", step + 1, config.Steps, row));
            last = row;
            if (state is not null && config.SaveEvery > 0 && (step + 1) % config.SaveEvery == 0 && step + 1 < config.Steps)
                state.Save(step + 1, modules, optimizers, new JsonObject { ["kl_coef"] = kl.Coef });
        }
        policy.eval(); critic?.eval();
        return last;
    }

    /// <summary>Log-probs, values, scores, KL-shaped rewards and GAE for a rollout, without gradients.</summary>
    Experience MakeExperience(SampleBatch rollout, double klCoef)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int p = rollout.PromptLength, n = (int)rollout.ResponseMask.shape[1];
        var seq = rollout.Sequences;
        var attention = rollout.AttentionMask;
        var positions = Transformer.PositionsFromMask(attention);
        var mask = rollout.ResponseMask;

        var hidden = valueHead is null ? null : new List<Tensor>();
        var oldLogprobs = TokenLogprobs.Of(policy.Forward(seq, attention, positions, hiddenStates: hidden), seq).narrow(1, p - 1, n);
        var refLogprobs = TokenLogprobs.Of(reference.Forward(seq, attention, positions), seq).narrow(1, p - 1, n);
        var values = Values(seq, attention, positions, hidden).narrow(1, p - 1, n) * mask;
        var scores = score(rollout).to(float32).reshape(-1);
        var kl = KlEstimator.PerToken(oldLogprobs, refLogprobs, config.KlEstimator) * mask;
        var rewards = KlShapedReward.Compute(scores, kl, mask, klCoef, (-config.RewardClip, config.RewardClip));
        var (advantages, returns) = GaeEstimator.Compute(values, rewards, mask, config.Gamma, config.Lambda);
        if (config.WhitenAdvantages && mask.sum().item<float>() > 1) advantages = MaskedStats.MaskedWhiten(advantages, mask) * mask;

        return new Experience
        {
            Sequences = seq.clone().MoveToOuterDisposeScope(), AttentionMask = attention.clone().MoveToOuterDisposeScope(),
            Positions = positions.MoveToOuterDisposeScope(), ActionMask = mask.clone().MoveToOuterDisposeScope(),
            OldLogprobs = oldLogprobs.contiguous().MoveToOuterDisposeScope(), RefLogprobs = refLogprobs.contiguous().MoveToOuterDisposeScope(),
            Values = values.MoveToOuterDisposeScope(), Scores = scores.MoveToOuterDisposeScope(), Kl = kl.MoveToOuterDisposeScope(),
            Rewards = rewards.MoveToOuterDisposeScope(), Advantages = advantages.MoveToOuterDisposeScope(), Returns = returns.MoveToOuterDisposeScope(),
            PromptLength = p,
        };
    }

    /// <summary>Per-token values (B, T): the critic's, or the value head's on the policy's last hidden state.</summary>
    Tensor Values(Tensor seq, Tensor attention, Tensor positions, List<Tensor>? policyHidden) => critic is not null
        ? critic.TokenScores(seq, attention, positions).select(2, 0)
        : valueHead!.forward(policyHidden![^1]);

    Dictionary<string, double> TrainMinibatch(Experience exp, int[] rows, IReadOnlyList<SftExample> ptx, Optimizer actorOpt, Optimizer? criticOpt, Random rng)
    {
        using var scope = NewDisposeScope();
        var device = exp.Sequences.device;
        var index = tensor(rows.Select(r => (long)r).ToArray(), device: device);
        Tensor Pick(Tensor t) => t.index_select(0, index);
        var seq = Pick(exp.Sequences); var attention = Pick(exp.AttentionMask); var positions = Pick(exp.Positions);
        var mask = Pick(exp.ActionMask);
        int p = exp.PromptLength, n = exp.ResponseLength;

        var hidden = valueHead is null ? null : new List<Tensor>();
        var logits = policy.Forward(seq, attention, positions, hiddenStates: hidden);
        var logprobs = TokenLogprobs.Of(logits, seq).narrow(1, p - 1, n);
        var pol = PpoLoss.Policy(logprobs, Pick(exp.OldLogprobs), Pick(exp.Advantages), mask, config.ClipEps, config.Reduction);
        var entropy = MaskedStats.MaskedMean(TokenLogprobs.Entropy(logits).narrow(1, p - 1, n), mask);
        var actorLoss = pol.Loss;
        var result = new Dictionary<string, double>();

        if (config.PtxCoef > 0 && ptx.Count > 0)
        {
            var examples = Enumerable.Range(0, Math.Min(rows.Length, ptx.Count)).Select(_ => ptx[rng.Next(ptx.Count)]).ToList();
            var b = TokenBatch.RightPad(examples.Select(e => e.InputIds).ToList(), padId, device, examples.Select(e => e.LossMask).ToList());
            var lp = TokenLogprobs.Of(policy.Forward(b.Ids, b.AttentionMask), b.Ids);
            var lm = b.LossMask.narrow(1, 1, b.LossMask.shape[1] - 1);
            var ptxLoss = -(lp * lm).sum() / lm.sum().clamp_min(1);
            actorLoss = actorLoss + config.PtxCoef * ptxLoss;
            result["ptx_loss"] = ptxLoss.item<float>();
        }

        ValueLossOutput value;
        if (valueHead is not null)
        {
            var values = valueHead.forward(hidden![^1]).narrow(1, p - 1, n);
            value = PpoLoss.Value(values, Pick(exp.Values), Pick(exp.Returns), mask, config.ValueClip, config.Reduction);
            var total = actorLoss + config.ValueCoef * value.Loss;
            total.backward();
            result["grad_norm_actor"] = actorOpt.Apply(total.item<float>());
        }
        else
        {
            actorLoss.backward();
            result["grad_norm_actor"] = actorOpt.Apply(actorLoss.item<float>());
            var values = critic!.TokenScores(seq, attention, positions).select(2, 0).narrow(1, p - 1, n);
            value = PpoLoss.Value(values, Pick(exp.Values), Pick(exp.Returns), mask, config.ValueClip, config.Reduction);
            value.Loss.backward();
            result["grad_norm_critic"] = criticOpt!.Apply(value.Loss.item<float>());
        }
        result["policy_loss"] = pol.Loss.item<float>();
        result["value_loss"] = value.Loss.item<float>();
        result["clipfrac"] = pol.ClipFraction.item<float>();
        result["approx_kl"] = pol.ApproxKl.item<float>();
        result["entropy"] = entropy.item<float>();
        result["value_clipfrac"] = value.ClipFraction.item<float>();
        return result;
    }

    static Dictionary<string, double> Statistics(Experience exp, SampleBatch rollout)
    {
        using var scope = NewDisposeScope();
        var mask = exp.ActionMask;
        var lengths = mask.sum(1);
        var scores = exp.Scores;
        var seqKl = (exp.Kl * mask).sum(1);
        var residual = (exp.Returns - exp.Values) * mask;
        var returnVar = MaskedStats.MaskedVar(exp.Returns, mask, unbiased: false);
        var residualVar = MaskedStats.MaskedVar(residual, mask, unbiased: false);
        return new Dictionary<string, double>
        {
            ["reward_mean"] = scores.mean().item<float>(),
            ["reward_std"] = scores.std().item<float>(),
            ["kl"] = seqKl.mean().item<float>(),
            ["response_length"] = lengths.mean().item<float>(),
            ["explained_variance"] = 1 - residualVar.item<float>() / Math.Max(1e-8, returnVar.item<float>()),
            ["return_mean"] = MaskedStats.MaskedMean(exp.Returns, mask).item<float>(),
            ["finished_fraction"] = rollout.FinishReasons.Count(r => r == FinishReason.Stop) / (double)rollout.FinishReasons.Length,
        };
    }

    void UpdateEma(double beta)
    {
        using var _ = no_grad();
        var current = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, e) in Ema!.named_parameters()) e.mul_(beta).add_(current[name], alpha: 1 - beta);
    }
}
