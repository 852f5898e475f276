using System.Diagnostics;
using RlhfSharp.Data;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Sft;

/// <summary>
/// Supervised fine-tuning: next-token cross-entropy on the response tokens only (InstructGPT §3.5; TRL
/// <c>completion_only_loss</c>), averaged over all target tokens of an optimizer step so gradient accumulation
/// gives the same gradient as one large batch.
/// </summary>
public sealed class SftTrainer(CausalLM model, SftConfig config, int padId, int? eosId = null) : StageTrainer
{
    public Dictionary<string, double> Train(IReadOnlyList<SftExample> train, IReadOnlyList<SftExample> eval, StageState? state = null, CancellationToken cancel = default)
    {
        if (train.Count == 0) throw new RlhfException("SFT: no training examples.");
        var examples = config.Packing
            ? Packer.Pack(train, config.MaxLength, eosId ?? throw new RlhfException("SFT packing needs the tokenizer's EOS id."))
            : train.Select(e => e.Truncate(config.MaxLength)).Where(e => e.LossTokenCount > 0).ToList();
        if (examples.Count == 0) throw new RlhfException($"SFT: every example loses its completion at max_length {config.MaxLength}.");
        using var loop = new EpochLoop("sft", config, config.Optimizer, examples.Count, model.parameters(), new Dictionary<string, nn.Module> { ["policy"] = model })
        {
            State = state, Metrics = Metrics, Progress = Progress, Evaluate = eval.Count > 0 ? () => Evaluate(eval) : null,
        };
        config.SwitchDropout(model);
        model.train();
        var device = model.model.Embeddings.weight!.device;
        loop.Run((step, row) => Step(loop, examples, step, row, config.BatchSize, e => e.LossMask.Skip(1).Count(m => m), e => e.InputIds.Length, micro =>
        {
            var batch = TokenBatch.RightPad(micro.Select(e => e.InputIds).ToList(), padId, device, micro.Select(e => e.LossMask).ToList());
            var next = NextTokenDistributions.Of(model, batch.Ids, batch.AttentionMask, chunkSize: config.LogprobChunkSize);
            var mask = batch.LossMask.narrow(1, 1, batch.LossMask.shape[1] - 1);
            // Mixtral / Qwen2-MoE with output_router_logits: HF's loss adds the router's balancing term, per forward.
            return (-next.WeightedLogprobSum(batch.Ids, mask), Algorithms.Common.RouterBalanceLoss.Weighted(model));
        }), cancel);
        model.eval();
        return eval.Count > 0 ? Evaluate(eval) : new Dictionary<string, double>();
    }

    /// <summary>
    /// One SFT step over examples of either form, shared with <see cref="Seq2SeqSftTrainer"/>: the summed NLL of each
    /// micro-batch over the target tokens of the whole step (every rank's shard, so each rank's gradient is its share of
    /// the step's), plus an auxiliary loss weighted by the micro-batch's share of the step; then the loss and token count
    /// summed over the ranks first (so every rank sees the same loss and skips, or not, the same step), the optimizer step
    /// and the metrics row.
    /// </summary>
    /// <param name="targets">An example's target (loss) tokens.</param>
    /// <param name="tokens">An example's tokens, for the throughput.</param>
    /// <param name="microLoss">A micro-batch's summed NLL over its target tokens, and an auxiliary loss or null.</param>
    internal static void Step<T>(EpochLoop loop, IReadOnlyList<T> examples, int step, Dictionary<string, double> row, int batchSize,
        Func<T, int> targets, Func<T, int> tokens, Func<List<T>, (Tensor Nll, Tensor? Aux)> microLoss)
    {
        var indices = loop.Batch(step);
        double stepTargets = indices.Sum(i => targets(examples[i]));
        var mine = DataParallel.Shard(indices);
        double lossSum = 0, tokenSum = 0;
        for (int m = 0; m < mine.Count; m += batchSize)
        {
            using var scope = NewDisposeScope();
            var micro = mine.Skip(m).Take(batchSize).Select(i => examples[i]).ToList();
            var (nll, aux) = microLoss(micro);
            var loss = nll / Math.Max(1, stepTargets);
            if (aux is not null) loss = loss + aux * ((double)micro.Count / indices.Count);
            loss.backward();
            lossSum += nll.item<float>();
            tokenSum += micro.Sum(tokens);
        }
        var summed = DataParallel.Sum(lossSum, tokenSum);
        double gradNorm = loop.Optimizer.Apply(summed[0]);
        loop.EndStep(row, step, gradNorm, [KeyValuePair.Create("loss", summed[0] / Math.Max(1, stepTargets))], "tokens_per_s", summed[1]);
    }

    /// <summary>Mean negative log-likelihood per target token and its perplexity (each rank scores its shard).</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<SftExample> eval)
    {
        eval = DataParallel.Shard(eval);
        bool wasTraining = model.training;
        model.eval();
        var device = model.model.Embeddings.weight!.device;
        double nll = 0, count = 0;
        using (no_grad())
        {
            for (int i = 0; i < eval.Count; i += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var micro = eval.Skip(i).Take(config.BatchSize).Select(e => e.Truncate(config.MaxLength)).ToList();
                var batch = TokenBatch.RightPad(micro.Select(e => e.InputIds).ToList(), padId, device, micro.Select(e => e.LossMask).ToList());
                var logprobs = NextTokenDistributions.Of(model, batch.Ids, batch.AttentionMask, chunkSize: config.LogprobChunkSize).Logprobs(batch.Ids);
                var mask = batch.LossMask.narrow(1, 1, batch.LossMask.shape[1] - 1);
                nll -= (logprobs * mask).sum().item<float>();
                count += mask.sum().item<float>();
            }
        }
        if (wasTraining) model.train();
        var summed = DataParallel.Sum(nll, count);
        double mean = summed[0] / Math.Max(1, summed[1]);
        return new Dictionary<string, double> { ["eval_loss"] = mean, ["eval_perplexity"] = Math.Exp(mean) };
    }

}
