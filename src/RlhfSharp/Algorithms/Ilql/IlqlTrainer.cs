using System.Diagnostics;
using RlhfSharp.Data;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ilql;

/// <summary>
/// ILQL on scored completions (CarperAI/trlx@3340c2f <c>trlx/trainer/accelerate_ilql_trainer.py</c>): each step runs
/// the policy once over prompt + completion (an encoder-decoder: the prompt through the encoder, the completion through
/// the decoder; <see cref="IIlqlPolicy"/>), puts the <see cref="IlqlHeads"/> on its final hidden states, and takes one
/// AdamW step on the whole model and the heads against <see cref="IlqlLoss"/>; every
/// <see cref="IlqlConfig.StepsForTargetQSync"/> steps the target Q heads move towards the Q heads by Polyak averaging.
/// Rewards are normalised over the training set first (trlX <c>make_experience</c>). The heads are what decoding adds
/// to the logits afterwards (<see cref="IlqlDecoding"/>).
/// </summary>
public sealed class IlqlTrainer : StageTrainer
{
    readonly IIlqlPolicy policy;
    readonly IlqlHeads heads;
    readonly IlqlConfig config;
    readonly int padId;

    /// <summary>A decoder-only policy (<see cref="CausalIlqlPolicy"/>).</summary>
    public IlqlTrainer(CausalLM policy, IlqlHeads heads, IlqlConfig config, int padId) : this(new CausalIlqlPolicy(policy), heads, config, padId) { }

    /// <summary>Any policy behind the seam, e.g. a T5 (<see cref="Seq2SeqIlqlPolicy"/>).</summary>
    public IlqlTrainer(IIlqlPolicy policy, IlqlHeads heads, IlqlConfig config, int padId)
    {
        config.Validate("ilql");
        if (heads.HiddenSize != policy.HiddenSize || heads.VocabSize != policy.VocabSize)
            throw new RlhfException($"ILQL heads are for hidden {heads.HiddenSize}, vocab {heads.VocabSize}; the policy has {policy.HiddenSize}, {policy.VocabSize}.");
        this.policy = policy;
        this.heads = heads;
        this.config = config;
        this.padId = padId;
    }

    /// <summary>Trains; returns the last step's numbers and the held-out loss (<see cref="Evaluate"/>) when there is an eval set.</summary>
    public Dictionary<string, double> Train(IReadOnlyList<ScoredExample> train, IReadOnlyList<ScoredExample> eval, StageState? state = null, CancellationToken cancel = default)
    {
        var examples = train.Where(Usable).ToList();
        if (examples.Count == 0) throw new RlhfException($"ILQL: no example keeps a prompt token and a completion token at max_length {config.MaxLength}.");
        var rewards = IlqlLoss.NormalizeRewards(examples.Select(e => e.Reward).ToList());
        using var loop = new EpochLoop("ilql", config, config.Optimizer, examples.Count, policy.Module.parameters().Concat(heads.Trainable),
            new Dictionary<string, nn.Module> { ["policy"] = policy.Module, ["ilql_heads"] = heads }, config.TotalSteps)
        {
            State = state, Metrics = Metrics, Progress = Progress, Evaluate = eval.Count > 0 ? () => Evaluate(eval) : null,
        };
        config.SwitchDropout(policy.Module);
        policy.Module.train();
        heads.train();
        var last = loop.Run((step, row) =>
        {
            var indices = loop.Batch(step);
            var sums = new Dictionary<string, double>();
            for (int m = 0; m < indices.Count; m += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var micro = indices.Skip(m).Take(config.BatchSize).ToList();
                var (loss, metrics) = MicroLoss(micro.Select(i => examples[i]).ToList(), micro.Select(i => rewards[i]).ToList());
                // Each micro-batch's loss weighted by its share of the step: the gradient of the step's mean.
                (loss * ((double)micro.Count / indices.Count)).backward();
                foreach (var (k, v) in metrics) sums[k] = sums.GetValueOrDefault(k) + v * micro.Count / indices.Count;
            }
            double gradNorm = loop.Optimizer.Apply(sums["loss"]);
            if ((step + 1) % config.StepsForTargetQSync == 0) heads.SyncTargets(config.Alpha);
            loop.EndStep(row, step, gradNorm, sums, "examples_per_s", indices.Count);
        }, cancel);
        policy.Module.eval();
        heads.eval();
        return last;
    }

    /// <summary>The held-out loss and its parts (rewards normalised over the held-out set), without gradients.</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<ScoredExample> eval)
    {
        var examples = eval.Where(Usable).ToList();
        if (examples.Count == 0) return [];
        var rewards = IlqlLoss.NormalizeRewards(examples.Select(e => e.Reward).ToList());
        bool wasTraining = policy.Module.training;
        policy.Module.eval();
        heads.eval();
        var sums = new Dictionary<string, double>();
        using (no_grad())
            for (int i = 0; i < examples.Count; i += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var rows = Enumerable.Range(i, Math.Min(config.BatchSize, examples.Count - i)).ToList();
                var (_, metrics) = MicroLoss(rows.Select(r => examples[r]).ToList(), rows.Select(r => rewards[r]).ToList());
                foreach (var (k, v) in metrics) sums[k] = sums.GetValueOrDefault(k) + v * rows.Count / examples.Count;
            }
        if (wasTraining) { policy.Module.train(); heads.train(); }
        return new Dictionary<string, double>
        {
            ["eval_loss"] = sums["loss"], ["eval_loss_q"] = sums["loss_q"], ["eval_loss_v"] = sums["loss_v"], ["eval_loss_awac"] = sums["loss_awac"],
        };
    }

    static bool Usable(ScoredExample e) => e.PromptIds.Length > 0 && e.CompletionIds.Length > 0;

    /// <summary>The loss of one micro-batch and its diagnostics (trlX's <c>ILQLConfig.loss</c> stats, named).</summary>
    (Tensor Loss, Dictionary<string, double> Metrics) MicroLoss(IReadOnlyList<ScoredExample> batch, IReadOnlyList<double> rewards)
    {
        var dtype = heads.parameters().First().dtype;
        var b = policy.Batch(batch, rewards, padId, dtype);
        var h = policy.Hidden(b);                                             // (B, T, H), after the final norm (HF hidden_states[-1])
        var aux = Common.RouterBalanceLoss.Weighted(policy.Module);
        var actionHidden = IlqlBatch.Select(h, b.ActionIxs);                  // (B, A, H)
        var (qs, targetQs, values) = heads.Forward(actionHidden, IlqlBatch.Select(h, b.StateIxs));
        var output = IlqlLoss.Compute(policy.Head(actionHidden), qs, targetQs, values, b.Actions, b.Rewards, b.Dones,
            config.Gamma, config.Tau, config.CqlScale, config.AwacScale, config.AwacBeta);
        var m = output.Mask;
        var n = m.sum().clamp_min(1);
        // One host copy for every diagnostic (STYLE.md: no .item() per number).
        var v = stack([
            output.Loss.detach(), output.LossQ.detach(), output.LossV.detach(), output.LossCql.detach(), output.LossAwac.detach(),
            (output.V.detach() * m).sum() / n, (output.Q[0].detach() * m).sum() / n, (output.TargetQ * m).sum() / n,
            (output.AwacWeight * m).sum() / n,
        ]).to(ScalarType.Float64).cpu().data<double>().ToArray();
        return (aux is null ? output.Loss : output.Loss + aux, new Dictionary<string, double>
        {
            ["loss"] = v[0], ["loss_q"] = v[1], ["loss_v"] = v[2], ["loss_cql"] = v[3], ["loss_awac"] = v[4],
            ["values_mean"] = v[5], ["qvalues_mean"] = v[6], ["target_qvalues_mean"] = v[7], ["awac_weight_mean"] = v[8],
        });
    }
}
