using RlhfSharp.Models.T5;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>
/// KTO for an encoder-decoder (TRL <c>KTOTrainer</c> with <c>is_encoder_decoder</c>, huggingface/trl@f2cd577
/// <c>trl/trainer/kto_trainer.py</c>: <c>prompt_input_ids</c> to the encoder, <c>completion_labels</c> to the decoder, and
/// the KL batch as <c>KL_prompt_input_ids</c> with a mismatched <c>KL_completion_labels</c>). A completion's log-prob is
/// the sum over its label tokens (<see cref="Seq2SeqLogprobs"/>); the loss, the reference point and the batch order
/// (a seeded shuffle, read in order so each batch's KL pairs are its own completions shifted, never a prompt's own
/// answer) are the decoder-only trainer's (<see cref="KtoLoss"/>, <see cref="PreferenceTrainer.KtoOrder"/>,
/// <see cref="PreferenceTrainer.KlPartners"/>).
/// </summary>
public sealed class Seq2SeqKtoTrainer : StageTrainer
{
    readonly T5ForConditionalGeneration policy;
    readonly Seq2SeqReference reference;
    readonly DpoConfig config;
    readonly int padId;

    /// <param name="reference">The frozen reference, or <paramref name="policy"/> itself when it has LoRA adapters to switch off.</param>
    public Seq2SeqKtoTrainer(T5ForConditionalGeneration policy, T5ForConditionalGeneration reference, DpoConfig config, int padId)
    {
        config.Validate("dpo");
        if (config.Loss != PreferenceLossKind.Kto) throw new RlhfException($"Seq2SeqKtoTrainer needs loss 'kto', not '{config.Loss}'.");
        if (config.PrecomputeReferenceLogprobs)
            throw new RlhfException("dpo.precompute_reference_logprobs is not supported for encoder-decoder (T5) models yet; leave it false.");
        config.CheckpointLayers(policy, "dpo");
        this.policy = policy;
        this.config = config;
        this.padId = padId;
        this.reference = new Seq2SeqReference(policy, reference, "KTO", disableDropout: config.DisableDropout);
    }

    /// <summary>The diagnostics TRL's KTOTrainer logs.</summary>
    static readonly string[] Names = ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "kl", "logps/chosen", "logps/rejected"];

    LabeledExample Truncate(LabeledExample e) => new(
        e.PromptIds.Length > config.MaxPromptLength ? e.PromptIds[^config.MaxPromptLength..] : e.PromptIds, // TRL keeps the prompt's end
        e.CompletionIds[..Math.Min(config.MaxLength, e.CompletionIds.Length)], e.Label);

    List<LabeledExample> Valid(IReadOnlyList<LabeledExample> examples) =>
        PreferenceTrainer.KtoOrder(examples.Select(Truncate).Where(e => e.PromptIds.Length > 0 && e.CompletionIds.Length > 0).ToList(), config.Seed);

    /// <summary>Trains on labelled (prompt, completion) pairs: the prompt's ids to the encoder, the completion's as labels.</summary>
    public Dictionary<string, double> Train(IReadOnlyList<LabeledExample> train, IReadOnlyList<LabeledExample> eval, StageState? state = null, CancellationToken cancel = default)
    {
        var examples = Valid(train);
        if (examples.Count == 0) throw new RlhfException("KTO: no example keeps a prompt and a completion.");
        var partners = PreferenceTrainer.KlPartners(PreferenceTrainer.PromptGroups(examples), config.BatchSize);
        using var loop = new EpochLoop("kto", config, config.Optimizer, examples.Count, policy.parameters(), new Dictionary<string, nn.Module> { ["policy"] = policy })
        {
            State = state, Metrics = Metrics, Progress = Progress, Evaluate = eval.Count > 0 ? () => Evaluate(eval) : null,
        };
        policy.train();
        reference.Eval();
        // In the shuffled order, the same every epoch, so each micro-batch is one chunk of KlPartners (TRL's sequential sampler).
        loop.RunMeans(micro => BatchLoss(examples, partners, micro), Names, cancel, sequential: true);
        policy.eval();
        return eval.Count > 0 ? Evaluate(eval) : new Dictionary<string, double>();
    }

    /// <summary>
    /// The KTO loss of one micro-batch and its diagnostics: the examples' own label log-probs under the policy (with
    /// gradients) and the reference, and the reference point z_ref from the mismatched pairs, both models without
    /// gradients (TRL computes the KL logits under <c>torch.no_grad()</c>).
    /// </summary>
    public (Tensor Loss, IReadOnlyDictionary<string, double> Metrics) BatchLoss(IReadOnlyList<LabeledExample> examples, int[] partners, IReadOnlyList<int> micro)
    {
        int b = micro.Count;
        var prompts = micro.Select(i => examples[i].PromptIds).ToList();
        var own = micro.Select(i => examples[i].CompletionIds).ToList();
        var mismatched = micro.Select(i => examples[partners[i]].CompletionIds).ToList();
        var sum = Seq2SeqLogprobs.Of(policy, prompts, own, padId).Logprobs.sum(1);
        Tensor policyKl;
        using (no_grad())
            policyKl = Seq2SeqLogprobs.Of(policy, prompts, mismatched, padId).Logprobs.sum(1);
        var refSum = reference.SumLogprobs([.. prompts, .. prompts], [.. own, .. mismatched], padId);
        var (refOwn, refKl) = (refSum.narrow(0, 0, b), refSum.narrow(0, b, b));
        var kl = KtoLoss.ReferencePoint(policyKl, refKl);
        var device = sum.device;
        var chosenRows = tensor(Enumerable.Range(0, b).Where(i => examples[micro[i]].Label).Select(i => (long)i).ToArray(), device: device);
        var rejectedRows = tensor(Enumerable.Range(0, b).Where(i => !examples[micro[i]].Label).Select(i => (long)i).ToArray(), device: device);
        var (chosen, rejected) = (sum.index_select(0, chosenRows), sum.index_select(0, rejectedRows));
        var output = KtoLoss.Compute(chosen, refOwn.index_select(0, chosenRows), rejected, refOwn.index_select(0, rejectedRows), kl,
            config.Beta, config.DesirableWeight, config.UndesirableWeight);
        // Either side may be empty in a micro-batch: its means are NaN and MetricSums skips them.
        var v = stack([output.Loss.detach(), output.ChosenRewards.mean(), output.RejectedRewards.mean(), kl,
            chosen.detach().mean(), rejected.detach().mean()]).cpu().data<float>().ToArray();
        return (output.Loss, new Dictionary<string, double>
        {
            ["loss"] = v[0], ["rewards/chosen"] = v[1], ["rewards/rejected"] = v[2], ["rewards/margins"] = v[1] - v[2], ["kl"] = v[3],
            ["logps/chosen"] = v[4], ["logps/rejected"] = v[5],
        });
    }

    /// <summary>Held-out KTO loss and the gap between the mean desirable and mean undesirable rewards.</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<LabeledExample> eval)
    {
        var valid = Valid(eval);
        var partners = PreferenceTrainer.KlPartners(PreferenceTrainer.PromptGroups(valid), Math.Max(2, config.BatchSize));
        bool wasTraining = policy.training;
        policy.eval();
        var sums = new MetricSums(Names);
        var batches = DataParallel.Shard(Enumerable.Range(0, (valid.Count + config.BatchSize - 1) / config.BatchSize).ToList());
        using (no_grad())
            foreach (int i in batches.Select(k => k * config.BatchSize))
            {
                using var scope = NewDisposeScope();
                var micro = Enumerable.Range(i, Math.Min(config.BatchSize, valid.Count - i)).ToList();
                sums.Add(BatchLoss(valid, partners, micro).Metrics, micro.Count);
            }
        if (wasTraining) policy.train();
        var all = sums.AcrossRanks();
        return new Dictionary<string, double> { ["eval_loss"] = all.Mean("loss"), ["eval_margin"] = all.Mean("rewards/margins") };
    }
}
