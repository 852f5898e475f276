using RlhfSharp.Models.T5;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>
/// DPO, cDPO and IPO for an encoder-decoder (TRL <c>DPOTrainer</c> with <c>is_encoder_decoder</c>,
/// huggingface/trl@f2cd577 <c>trl/trainer/dpo_trainer.py</c> <c>concatenated_forward</c>): the prompt is the encoder's
/// input, repeated for chosen and rejected, which are the decoder's labels; a sequence's log-prob is the sum over its
/// label tokens. Chosen and rejected go through the policy in one batch; the frozen reference runs under no_grad.
/// The losses are <see cref="DpoLoss"/>'s, as in <see cref="PreferenceTrainer"/>.
/// </summary>
public sealed class Seq2SeqDpoTrainer : StageTrainer
{
    readonly T5ForConditionalGeneration policy;
    readonly Seq2SeqReference reference;
    readonly DpoConfig config;
    readonly int padId;

    public Seq2SeqDpoTrainer(T5ForConditionalGeneration policy, T5ForConditionalGeneration reference, DpoConfig config, int padId)
    {
        config.Validate("dpo");
        if (config.Loss is not (PreferenceLossKind.Sigmoid or PreferenceLossKind.Cdpo or PreferenceLossKind.Ipo or PreferenceLossKind.Simpo or PreferenceLossKind.Orpo))
            throw new RlhfException($"{config.Loss} is not supported for encoder-decoder models yet (dpo, cdpo, ipo, simpo and orpo are).");
        config.RefuseLogprobChunks("dpo", "an encoder-decoder (T5) model's head is read whole");
        config.CheckpointLayers(policy, "dpo");
        this.policy = policy;
        this.config = config;
        this.padId = padId;
        // With LoRA the reference is the policy itself with its adapters switched off (one copy of the weights).
        this.reference = new Seq2SeqReference(policy, reference, "DPO", config.NeedsReference, config.DisableDropout);
    }

    public Dictionary<string, double> Train(IReadOnlyList<Seq2SeqPreference> train, IReadOnlyList<Seq2SeqPreference> eval, StageState? state = null, CancellationToken cancel = default)
    {
        var examples = train.Select(Truncate).Where(e => e.PromptIds.Length > 0 && e.ChosenIds.Length > 0 && e.RejectedIds.Length > 0).ToList();
        if (examples.Count == 0) throw new RlhfException($"{config.Loss}: no pair keeps a prompt and both completions.");
        using var loop = new EpochLoop(PreferenceTrainer.StageName(config.Loss), config, config.Optimizer, examples.Count, policy.parameters(),
            new Dictionary<string, nn.Module> { ["policy"] = policy })
        {
            State = state, Metrics = Metrics, Progress = Progress, Evaluate = eval.Count > 0 ? () => Evaluate(eval) : null,
        };
        policy.train();
        reference.Eval();
        loop.RunMeans(micro =>
        {
            var (loss, values) = PairLoss(micro.Select(i => examples[i]).ToList());
            return (loss, Names.Zip(values).ToDictionary(p => p.First, p => p.Second));
        }, Names, cancel);
        policy.eval();
        return eval.Count > 0 ? Evaluate(eval) : new Dictionary<string, double>();
    }

    /// <summary>The diagnostics TRL logs, in the order <see cref="PairLoss"/> returns them.</summary>
    static readonly string[] Names = ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"];

    Seq2SeqPreference Truncate(Seq2SeqPreference e) => new(
        e.PromptIds.Length > config.MaxPromptLength ? e.PromptIds[^config.MaxPromptLength..] : e.PromptIds, // TRL keeps the prompt's end
        e.ChosenIds[..Math.Min(config.MaxLength, e.ChosenIds.Length)], e.RejectedIds[..Math.Min(config.MaxLength, e.RejectedIds.Length)]);

    /// <summary>Mean loss of a micro-batch of pairs and its diagnostics (see <see cref="Names"/>).</summary>
    public (Tensor Loss, double[] Values) PairLoss(IReadOnlyList<Seq2SeqPreference> batch)
    {
        int b = batch.Count;
        var prompts = batch.Select(e => e.PromptIds).Concat(batch.Select(e => e.PromptIds)).ToList();
        var targets = batch.Select(e => e.ChosenIds).Concat(batch.Select(e => e.RejectedIds)).ToList();
        var (lp, mask) = Seq2SeqLogprobs.Of(policy, prompts, targets, padId);
        var sum = lp.sum(1);
        var count = mask.sum(1);
        var (chosen, rejected) = (sum.narrow(0, 0, b), sum.narrow(0, b, b));
        var (chosenCount, rejectedCount) = (count.narrow(0, 0, b), count.narrow(0, b, b));
        Tensor refChosen = chosen, refRejected = rejected; // unused by SimPO and ORPO, which have no reference
        if (config.NeedsReference)
        {
            var refSum = reference.SumLogprobs(prompts, targets, padId);
            (refChosen, refRejected) = (refSum.narrow(0, 0, b), refSum.narrow(0, b, b));
        }
        // SimPO and ORPO read length-averaged log-probs and ORPO adds the token-mean NLL of the chosen labels, as
        // PreferenceTrainer does for decoder-only models (TRL CPO/ORPO average_log_prob=True on the labels).
        var output = config.Loss switch
        {
            PreferenceLossKind.Sigmoid => DpoLoss.Sigmoid(chosen, rejected, refChosen, refRejected, config.Beta),
            PreferenceLossKind.Cdpo => DpoLoss.Sigmoid(chosen, rejected, refChosen, refRejected, config.Beta, config.LabelSmoothing),
            PreferenceLossKind.Simpo => SimpoLoss.Compute(chosen / chosenCount, rejected / rejectedCount, config.Beta, config.SimpoGamma, config.LabelSmoothing),
            PreferenceLossKind.Orpo => OrpoLoss.Compute(chosen / chosenCount, rejected / rejectedCount, -chosen.sum() / chosenCount.sum(), config.Beta) is var o
                ? new PreferenceLossOutput(o.Loss, o.OddsRatioLosses, o.ChosenRewards, o.RejectedRewards) : null!,
            _ => DpoLoss.IpoLengthNormalised(chosen, rejected, refChosen, refRejected, chosenCount, rejectedCount, config.Beta),
        };
        var (cr, rr) = (output.ChosenRewards, output.RejectedRewards);
        var v = stack([output.Loss.detach(), cr.mean(), rr.mean(), cr.gt(rr).to(ScalarType.Float32).mean(), (cr - rr).mean(),
            chosen.detach().mean(), rejected.detach().mean()]).cpu().data<float>().Select(x => (double)x).ToArray();
        return (output.Loss, v);
    }

    /// <summary>Held-out loss, reward accuracy and mean reward margin.</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<Seq2SeqPreference> eval)
    {
        var valid = DataParallel.Shard(eval.Select(Truncate).Where(e => e.PromptIds.Length > 0 && e.ChosenIds.Length > 0 && e.RejectedIds.Length > 0).ToList());
        bool wasTraining = policy.training;
        policy.eval();
        var sums = new double[Names.Length];
        using (no_grad())
            for (int i = 0; i < valid.Count; i += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var micro = valid.Skip(i).Take(config.BatchSize).ToList();
                var (_, values) = PairLoss(micro);
                for (int k = 0; k < sums.Length; k++) sums[k] += values[k] * micro.Count;
            }
        if (wasTraining) policy.train();
        var summed = DataParallel.Sum([.. sums, valid.Count]);
        double n = Math.Max(1, summed[^1]);
        return new Dictionary<string, double> { ["eval_loss"] = summed[0] / n, ["eval_accuracy"] = summed[3] / n, ["eval_margin"] = summed[4] / n };
    }
}
