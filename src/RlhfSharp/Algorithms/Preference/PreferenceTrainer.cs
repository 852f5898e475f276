using System.Diagnostics;
using RlhfSharp.Algorithms.Common;
using RlhfSharp.Data;
using RlhfSharp.Distributed;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>
/// The offline preference family in one flat loop: DPO, cDPO, IPO, SimPO and ORPO on prompt/chosen/rejected pairs
/// (<see cref="Train"/>), KTO on unpaired labelled completions (<see cref="TrainKto"/>). Chosen and rejected go through
/// the policy in ONE batch and are split after (TRL <c>concatenated_forward</c>); the frozen
/// reference is run under no_grad or once before training
/// (<see cref="DpoConfig.PrecomputeReferenceLogprobs"/>). SimPO and ORPO need no reference: pass null.
/// </summary>
public sealed class PreferenceTrainer : StageTrainer
{
    readonly CausalLM policy;
    readonly CausalLM? reference;
    readonly DpoConfig config;
    readonly int padId;

    public PreferenceTrainer(CausalLM policy, CausalLM? reference, DpoConfig config, int padId)
    {
        if (config.NeedsReference && reference is null) throw new RlhfException($"{config.Loss}: the loss needs a frozen reference model.");
        config.Validate("dpo");
        this.policy = policy;
        this.reference = reference;
        this.config = config;
        this.padId = padId;
        if (reference is not null) foreach (var p in reference.parameters()) p.requires_grad = false;
        config.SwitchDropout(policy); // the policy's log-probs are compared with the dropout-free reference's (TRL disable_dropout)
    }

    /// <summary>The run sub-folder and progress label of a loss: cDPO is DPO with label smoothing.</summary>
    public static string StageName(PreferenceLossKind loss) => loss switch
    {
        PreferenceLossKind.Sigmoid or PreferenceLossKind.Cdpo => "dpo",
        _ => loss.ToString().ToLowerInvariant(),
    };

    /// <summary>Trains on preference pairs; returns the final <see cref="Evaluate(IReadOnlyList{PreferenceExample})"/> numbers.</summary>
    public Dictionary<string, double> Train(IReadOnlyList<PreferenceExample> train, IReadOnlyList<PreferenceExample> eval, StageState? state = null, CancellationToken cancel = default)
    {
        if (config.Loss == PreferenceLossKind.Kto) throw new RlhfException("KTO trains on labelled completions: call TrainKto.");
        var examples = train.Where(e => e.ChosenIds.Length > 0 && e.RejectedIds.Length > 0).ToList();
        if (examples.Count == 0) throw new RlhfException($"{config.Loss}: no pair keeps both completions at max_length {config.MaxLength}.");
        var precomputed = config.PrecomputeReferenceLogprobs && reference is not null
            ? PrecomputeReference(examples.Count, idx => PairSequences(idx.Select(i => examples[i]).ToList()))
            : null;
        return Run(examples.Count, micro =>
        {
            var batch = micro.Select(i => examples[i]).ToList();
            return PairLoss(batch, precomputed is null ? null : [.. micro, .. micro.Select(i => examples.Count + i)], precomputed);
        }, () => Evaluate(eval), eval.Count > 0, state, cancel, sequential: false);
    }

    /// <summary>Trains KTO on labelled completions; returns the final <see cref="Evaluate(IReadOnlyList{LabeledExample})"/> numbers.</summary>
    public Dictionary<string, double> TrainKto(IReadOnlyList<LabeledExample> train, IReadOnlyList<LabeledExample> eval, StageState? state = null, CancellationToken cancel = default)
    {
        if (config.Loss != PreferenceLossKind.Kto) throw new RlhfException($"TrainKto needs loss 'kto', not '{config.Loss}'.");
        var examples = KtoOrder(train.Where(e => e.CompletionIds.Length > 0).ToList(), config.Seed);
        if (examples.Count == 0) throw new RlhfException($"KTO: no example keeps its completion at max_length {config.MaxLength}.");
        var partners = KlPartners(PromptGroups(examples), config.BatchSize);
        var precomputed = config.PrecomputeReferenceLogprobs
            ? PrecomputeReference(examples.Count, idx => KtoSequences(examples, partners, idx))
            : null;
        // Batches in the shuffled order, the same every epoch (TRL's KTOTrainer uses a SequentialSampler when it computes
        // the KL term), so each micro-batch is exactly one chunk of KlPartners: the KL set is the batch's own completions.
        return Run(examples.Count, micro => KtoBatchLoss(examples, partners, micro,
            precomputed is null ? null : [.. micro, .. micro.Select(i => examples.Count + i)], precomputed),
            () => Evaluate(eval), eval.Count > 0, state, cancel, sequential: true);
    }

    /// <summary>Held-out loss, reward accuracy (chosen reward above rejected) and mean reward margin.</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<PreferenceExample> eval)
    {
        var valid = eval.Where(e => e.ChosenIds.Length > 0 && e.RejectedIds.Length > 0).ToList();
        var sums = EvaluateBatches(valid.Count, micro => PairLoss(micro.Select(i => valid[i]).ToList(), null, null));
        return new Dictionary<string, double>
        {
            ["eval_loss"] = sums.Mean("loss"), ["eval_accuracy"] = sums.Mean("rewards/accuracies"), ["eval_margin"] = sums.Mean("rewards/margins"),
        };
    }

    /// <summary>Held-out KTO loss and the gap between mean desirable and mean undesirable rewards.</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<LabeledExample> eval)
    {
        var valid = KtoOrder(eval.Where(e => e.CompletionIds.Length > 0).ToList(), config.Seed);
        var partners = KlPartners(PromptGroups(valid), Math.Max(2, config.BatchSize));
        var sums = EvaluateBatches(valid.Count, micro => KtoBatchLoss(valid, partners, micro, null, null));
        return new Dictionary<string, double> { ["eval_loss"] = sums.Mean("loss"), ["eval_margin"] = sums.Mean("rewards/margins") };
    }

    /// <summary>
    /// The shared loop: seeded shuffle per epoch (dataset order when <paramref name="sequential"/>), micro-batches of
    /// <see cref="EpochStageConfig.BatchSize"/> accumulated into one optimizer step, one dispose scope per micro-batch, eval at
    /// each epoch's end, resumable state.
    /// </summary>
    Dictionary<string, double> Run(int count, Func<IReadOnlyList<int>, (Tensor Loss, Dictionary<string, double> Metrics)> microStep,
        Func<Dictionary<string, double>> evaluate, bool hasEval, StageState? state, CancellationToken cancel, bool sequential)
    {
        using var loop = new EpochLoop(StageName(config.Loss), config, config.Optimizer, count, policy.parameters(), new Dictionary<string, nn.Module> { ["policy"] = policy })
        {
            State = state, Metrics = Metrics, Progress = Progress, Evaluate = hasEval ? evaluate : null,
        };
        policy.train();
        reference?.eval();
        loop.RunMeans(micro => microStep(micro), MetricNames, cancel, sequential);
        policy.eval();
        return hasEval ? evaluate() : new Dictionary<string, double>();
    }

    /// <summary>
    /// Loss and diagnostics of one micro-batch of pairs. <paramref name="referenceRows"/> index
    /// <paramref name="precomputed"/> (chosen rows, then rejected rows) when the reference was run before training.
    /// </summary>
    (Tensor Loss, Dictionary<string, double> Metrics) PairLoss(IReadOnlyList<PreferenceExample> batch, int[]? referenceRows, float[]? precomputed)
    {
        long b = batch.Count;
        var sequences = PairSequences(batch);
        var (sum, count) = SequenceLogprobs.Of(policy, sequences, padId, config.LogprobChunkSize);
        // Mixtral / Qwen2-MoE: the router's loss of the concatenated forward, as TRL's aux_loss_enabled (dpo_trainer.py).
        var aux = RouterBalanceLoss.Weighted(policy);
        var (chosen, rejected) = (sum.narrow(0, 0, b), sum.narrow(0, b, b));
        var (chosenCount, rejectedCount) = (count.narrow(0, 0, b), count.narrow(0, b, b));
        Tensor? refChosen = null, refRejected = null;
        if (config.NeedsReference)
        {
            var refSum = ReferenceLogprobs(sequences, referenceRows, precomputed);
            (refChosen, refRejected) = (refSum.narrow(0, 0, b), refSum.narrow(0, b, b));
        }
        var metrics = new Dictionary<string, double>();
        PreferenceLossOutput output;
        switch (config.Loss)
        {
            case PreferenceLossKind.Sigmoid:
                output = DpoLoss.Sigmoid(chosen, rejected, refChosen!, refRejected!, config.Beta);
                break;
            case PreferenceLossKind.Cdpo:
                output = DpoLoss.Sigmoid(chosen, rejected, refChosen!, refRejected!, config.Beta, config.LabelSmoothing);
                break;
            case PreferenceLossKind.Ipo:
                // TRL's "ipo" divides each log-ratio by its completion length; its logged rewards use the summed log-ratios.
                output = DpoLoss.IpoLengthNormalised(chosen, rejected, refChosen!, refRejected!, chosenCount, rejectedCount, config.Beta);
                break;
            case PreferenceLossKind.Simpo:
                output = SimpoLoss.Compute(chosen / chosenCount, rejected / rejectedCount, config.Beta, config.SimpoGamma, config.LabelSmoothing);
                break;
            case PreferenceLossKind.Orpo:
                // The SFT term is the token-mean cross-entropy over the chosen completions (TRL ORPO policy_nll_loss).
                var nll = -chosen.sum() / chosenCount.sum();
                var orpo = OrpoLoss.Compute(chosen / chosenCount, rejected / rejectedCount, nll, config.Beta);
                output = new PreferenceLossOutput(orpo.Loss, orpo.OddsRatioLosses, orpo.ChosenRewards, orpo.RejectedRewards);
                var extra = stack([nll, orpo.LogOdds.mean()]).detach().cpu().data<float>().ToArray();
                metrics["nll_loss"] = extra[0];
                metrics["log_odds_ratio"] = extra[1];
                break;
            default:
                throw new RlhfException($"{config.Loss} is not a pairwise loss.");
        }
        var (cr, rr) = (output.ChosenRewards, output.RejectedRewards);
        // One host copy for every diagnostic (STYLE.md: no .item() per number).
        var v = stack([output.Loss.detach(), cr.mean(), rr.mean(), cr.gt(rr).to(ScalarType.Float32).mean(), (cr - rr).mean(),
            chosen.detach().mean(), rejected.detach().mean()]).cpu().data<float>().ToArray();
        metrics["loss"] = v[0];
        metrics["rewards/chosen"] = v[1];
        metrics["rewards/rejected"] = v[2];
        metrics["rewards/accuracies"] = v[3];
        metrics["rewards/margins"] = v[4];
        metrics["logps/chosen"] = v[5];
        metrics["logps/rejected"] = v[6];
        return (aux is null ? output.Loss : output.Loss + aux, metrics);
    }

    /// <summary>
    /// KTO loss of one micro-batch. The reference point z_ref is the policy-to-reference log-ratio on mismatched
    /// (prompt, completion) pairs, both forwards without gradient (TRL <c>kto_trainer.py</c> <c>forward</c>: KL logits
    /// under <c>torch.no_grad()</c>).
    /// </summary>
    (Tensor Loss, Dictionary<string, double> Metrics) KtoBatchLoss(IReadOnlyList<LabeledExample> examples, int[] partners, IReadOnlyList<int> micro,
        int[]? referenceRows, float[]? precomputed)
    {
        long b = micro.Count;
        var sequences = KtoSequences(examples, partners, micro);
        var (sum, _) = SequenceLogprobs.Of(policy, sequences.Take(micro.Count).ToList(), padId, config.LogprobChunkSize);
        var aux = RouterBalanceLoss.Weighted(policy);
        Tensor policyKl;
        using (no_grad()) policyKl = SequenceLogprobs.Of(policy, sequences.Skip(micro.Count).ToList(), padId, config.LogprobChunkSize).Sum;
        var refSum = ReferenceLogprobs(sequences, referenceRows, precomputed);
        var (refCompletion, refKl) = (refSum.narrow(0, 0, b), refSum.narrow(0, b, b));
        var kl = KtoLoss.ReferencePoint(policyKl, refKl);

        var device = sum.device;
        var chosenRows = tensor(Enumerable.Range(0, micro.Count).Where(i => examples[micro[i]].Label).Select(i => (long)i).ToArray(), device: device);
        var rejectedRows = tensor(Enumerable.Range(0, micro.Count).Where(i => !examples[micro[i]].Label).Select(i => (long)i).ToArray(), device: device);
        var (chosen, rejected) = (sum.index_select(0, chosenRows), sum.index_select(0, rejectedRows));
        var output = KtoLoss.Compute(chosen, refCompletion.index_select(0, chosenRows), rejected, refCompletion.index_select(0, rejectedRows), kl,
            config.Beta, config.DesirableWeight, config.UndesirableWeight);

        // Either side may be empty in a micro-batch: its means are NaN and MetricSums skips them.
        var v = stack([output.Loss.detach(), output.ChosenRewards.mean(), output.RejectedRewards.mean(), kl,
            chosen.detach().mean(), rejected.detach().mean()]).cpu().data<float>().ToArray();
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = v[0], ["rewards/chosen"] = v[1], ["rewards/rejected"] = v[2], ["rewards/margins"] = v[1] - v[2], ["kl"] = v[3],
            ["logps/chosen"] = v[4], ["logps/rejected"] = v[5],
        };
        return (aux is null ? output.Loss : output.Loss + aux, metrics);
    }

    /// <summary>Summed reference log-probs of <paramref name="sequences"/>: looked up when precomputed, else one no_grad forward.</summary>
    Tensor ReferenceLogprobs(IReadOnlyList<(int[] Prompt, int[] Completion)> sequences, int[]? rows, float[]? precomputed)
    {
        var device = policy.model.Embeddings.weight!.device;
        if (precomputed is not null && rows is not null) return tensor(rows.Select(r => precomputed[r]).ToArray(), device: device);
        using var _ = no_grad();
        // Its own scope: TorchSharp frees a forward's intermediates (every layer's activations, the logits) only when their
        // scope ends, and the micro-batch's scope would keep them through the policy's forward and backward.
        using var scope = NewDisposeScope();
        return SequenceLogprobs.Of(reference!, sequences, padId, config.LogprobChunkSize).Sum.to(device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Reference log-probs of every example's sequences (rows 0..N−1: chosen or completion; N..2N−1: rejected or KL
    /// pair), once, so the reference model runs one pass instead of one per epoch.
    /// </summary>
    float[] PrecomputeReference(int count, Func<IReadOnlyList<int>, List<(int[] Prompt, int[] Completion)>> sequencesOf)
    {
        var result = new float[2 * count];
        using var _ = no_grad();
        for (int i = 0; i < count; i += config.BatchSize)
        {
            using var scope = NewDisposeScope();
            var rows = Enumerable.Range(i, Math.Min(config.BatchSize, count - i)).ToList();
            var logps = SequenceLogprobs.Of(reference!, sequencesOf(rows), padId, config.LogprobChunkSize).Sum.cpu().data<float>().ToArray();
            for (int j = 0; j < rows.Count; j++) { result[rows[j]] = logps[j]; result[count + rows[j]] = logps[rows.Count + j]; }
        }
        return result;
    }

    /// <summary>Prompt + chosen for every pair, then prompt + rejected for every pair: TRL's concatenated batch.</summary>
    static List<(int[] Prompt, int[] Completion)> PairSequences(IReadOnlyList<PreferenceExample> batch) =>
        [.. batch.Select(e => (e.PromptIds, e.ChosenIds)), .. batch.Select(e => (e.PromptIds, e.RejectedIds))];

    /// <summary>Each example's own (prompt, completion), then each prompt with its KL partner's completion.</summary>
    static List<(int[] Prompt, int[] Completion)> KtoSequences(IReadOnlyList<LabeledExample> examples, int[] partners, IReadOnlyList<int> rows) =>
        [.. rows.Select(i => (examples[i].PromptIds, examples[i].CompletionIds)), .. rows.Select(i => (examples[i].PromptIds, examples[partners[i]].CompletionIds))];

    /// <summary>
    /// The order KTO visits its examples in: a permutation fixed by <paramref name="seed"/>, as TRL's KTOTrainer up to
    /// v0.11 (<c>kto_trainer.py</c>: <c>train_dataset.shuffle(seed=args.data_seed)</c>, eval likewise, before
    /// <c>_get_kl_dataset</c>), so batches mix desirable and undesirable completions. Unpaired preferences come all
    /// desirable then all undesirable (<see cref="LabeledCompletion.Unpair"/>); read in that order, every batch of a small
    /// set holds one label and the first half of an epoch only pushes log-ratios up. (TRL dropped the shuffle in v0.12 and
    /// leaves the order to the caller.)
    /// </summary>
    public static List<T> KtoOrder<T>(IReadOnlyList<T> examples, ulong seed) =>
        SeededOrder.Permutation(examples.Count, seed).Select(i => examples[i]).ToList();

    /// <summary>Each example's prompt as a number: equal prompts (token for token), equal numbers.</summary>
    public static int[] PromptGroups(IReadOnlyList<LabeledExample> examples)
    {
        var ids = new Dictionary<string, int>();
        return examples.Select(e => ids.TryGetValue(string.Join(' ', e.PromptIds), out int g) ? g : ids[string.Join(' ', e.PromptIds)] = ids.Count).ToArray();
    }

    /// <summary>
    /// The mismatched completion each prompt is paired with for KTO's KL estimate, within consecutive chunks of
    /// <paramref name="batchSize"/> examples (the trainer's batches): completions shifted by one, as TRL's
    /// <c>_get_kl_dataset</c> (<c>[answers[-1]] + answers[:-1]</c>, mapped with <c>batch_size=per_device_train_batch_size</c>).
    /// Fixed before training, so precomputed reference KL log-probs stay valid. After a shuffle a prompt's two answers can
    /// sit side by side, and the shift would pair the prompt with its own other answer (z₀ would absorb part of the
    /// desirable log-ratio): such a chunk is paired by <see cref="PromptDerangement"/> instead, still a permutation of the
    /// chunk's own completions, and a row that no pairing inside its chunk can serve (a prompt holding more than half
    /// the chunk) takes the next completion of another prompt after the chunk.
    /// </summary>
    /// <param name="prompts">Each example's prompt; equal numbers are the same prompt.</param>
    public static int[] KlPartners(IReadOnlyList<int> prompts, int batchSize)
    {
        int count = prompts.Count;
        var partners = new int[count];
        for (int start = 0; start < count; start += batchSize)
        {
            int n = Math.Min(batchSize, count - start);
            for (int j = 0; j < n; j++) partners[start + j] = start + (j - 1 + n) % n;
            if (Enumerable.Range(start, n).All(i => prompts[i] != prompts[partners[i]])) continue;
            var derangement = PromptDerangement(Enumerable.Range(start, n).Select(i => prompts[i]).ToList());
            for (int j = 0; j < n; j++)
            {
                int i = start + j;
                partners[i] = start + derangement[j];
                for (int k = 1; k <= count && prompts[partners[i]] == prompts[i]; k++) partners[i] = (start + n - 1 + k) % count;
                if (prompts[partners[i]] == prompts[i]) partners[i] = start + (j - 1 + n) % n; // one prompt in all the data: no mismatch exists
            }
        }
        return partners;
    }

    /// <summary>
    /// A permutation of 0..n−1 that sends no position to one of the same prompt, whenever no prompt holds more than half
    /// of them: positions grouped by prompt (largest group first) and each sent m places on, m the largest group's size;
    /// a group spans at most m ≤ n − m consecutive places, so the shift always leaves it.
    /// </summary>
    static int[] PromptDerangement(IReadOnlyList<int> prompts)
    {
        var grouped = Enumerable.Range(0, prompts.Count).GroupBy(j => prompts[j]).OrderByDescending(g => g.Count()).SelectMany(g => g).ToArray();
        int n = grouped.Length, m = prompts.GroupBy(x => x).Max(g => g.Count());
        var result = new int[n];
        for (int k = 0; k < n; k++) result[grouped[k]] = grouped[(k + m) % n];
        return result;
    }

    MetricSums EvaluateBatches(int count, Func<IReadOnlyList<int>, (Tensor Loss, Dictionary<string, double> Metrics)> microStep)
    {
        bool wasTraining = policy.training;
        policy.eval();
        var sums = new MetricSums(MetricNames);
        // Each rank scores its shard of the batches.
        var batches = DataParallel.Shard(Enumerable.Range(0, (count + config.BatchSize - 1) / config.BatchSize).ToList());
        using (no_grad())
        {
            foreach (int i in batches.Select(b => b * config.BatchSize))
            {
                using var scope = NewDisposeScope();
                var micro = Enumerable.Range(i, Math.Min(config.BatchSize, count - i)).ToList();
                sums.Add(microStep(micro).Metrics, micro.Count);
            }
        }
        if (wasTraining) policy.train();
        return sums.AcrossRanks();
    }

    /// <summary>Every metric this trainer can log (<see cref="MetricSums"/>: the ranks all-reduce them in this order).</summary>
    static readonly string[] MetricNames = ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
        "logps/rejected", "nll_loss", "log_odds_ratio", "kl"];
}
