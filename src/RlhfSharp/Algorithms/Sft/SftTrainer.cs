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
public sealed class SftTrainer(CausalLM model, SftConfig config, int padId, int? eosId = null)
{
    public IProgress<TrainingProgress>? Progress { get; init; }
    public MetricsLog? Metrics { get; init; }

    public Dictionary<string, double> Train(IReadOnlyList<SftExample> train, IReadOnlyList<SftExample> eval, StageState? state = null, CancellationToken cancel = default)
    {
        if (train.Count == 0) throw new RlhfException("SFT: no training examples.");
        var examples = config.Packing
            ? Packer.Pack(train, config.MaxLength, eosId ?? throw new RlhfException("SFT packing needs the tokenizer's EOS id."))
            : train.Select(e => e.Truncate(config.MaxLength)).Where(e => e.LossTokenCount > 0).ToList();
        if (examples.Count == 0) throw new RlhfException($"SFT: every example loses its completion at max_length {config.MaxLength}.");
        int perStep = config.BatchSize * config.Optimizer.GradientAccumulation;
        int stepsPerEpoch = (examples.Count + perStep - 1) / perStep;
        int total = stepsPerEpoch * config.Epochs;
        using var optimizer = new Optimizer(model.parameters(), config.Optimizer, total);
        var loop = new StepLoop
        {
            Stage = "sft", TotalSteps = total, State = state, SaveEvery = config.SaveEvery, Metrics = Metrics, Progress = Progress,
            Modules = new Dictionary<string, nn.Module> { ["policy"] = model }, Optimizers = new Dictionary<string, Optimizer> { ["policy"] = optimizer },
            StepsPerEpoch = stepsPerEpoch, Evaluate = eval.Count > 0 ? () => Evaluate(eval) : null,
        };
        model.train();
        var device = model.model.Embeddings.weight!.device;
        var clock = Stopwatch.StartNew();
        loop.Run((step, row) =>
        {
            var indices = SeededOrder.EpochBatch(examples.Count, perStep, step, config.Seed);
            double targets = indices.Sum(i => examples[i].LossMask.Skip(1).Count(m => m));
            // The normaliser counts the whole step (every rank's shard), so each rank's gradient is its share of the step's.
            var mine = DataParallel.Shard(indices);
            double lossSum = 0, tokens = 0;
            for (int m = 0; m < mine.Count; m += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var micro = mine.Skip(m).Take(config.BatchSize).Select(i => examples[i]).ToList();
                var batch = TokenBatch.RightPad(micro.Select(e => e.InputIds).ToList(), padId, device, micro.Select(e => e.LossMask).ToList());
                var logprobs = TokenLogprobs.Of(model.Forward(batch.Ids, batch.AttentionMask), batch.Ids);
                var mask = batch.LossMask.narrow(1, 1, batch.LossMask.shape[1] - 1);
                var nll = -(logprobs * mask).sum();
                var loss = nll / Math.Max(1, targets);
                // Mixtral / Qwen2-MoE with output_router_logits: HF's loss adds the router's balancing term, per forward.
                if (Algorithms.Common.RouterBalanceLoss.Weighted(model) is { } aux) loss = loss + aux * ((double)micro.Count / indices.Count);
                loss.backward();
                lossSum += nll.item<float>();
                tokens += micro.Sum(e => e.InputIds.Length);
            }
            FinishStep(row, lossSum, tokens, targets, step, stepsPerEpoch, optimizer, clock);
        }, cancel);
        model.eval();
        return eval.Count > 0 ? Evaluate(eval) : new Dictionary<string, double>();
    }

    /// <summary>
    /// The end of an SFT step, shared with <see cref="Seq2SeqSftTrainer"/>: the loss and token count summed over the ranks
    /// first (so every rank sees the same loss and skips, or not, the same step), the optimizer step, and the metrics row.
    /// </summary>
    internal static void FinishStep(IDictionary<string, double> row, double lossSum, double tokens, double targets, int step, int stepsPerEpoch,
        Optimizer optimizer, Stopwatch clock)
    {
        var summed = DataParallel.Sum(lossSum, tokens);
        double gradNorm = optimizer.Apply(summed[0]);
        row["epoch"] = (double)(step + 1) / stepsPerEpoch;
        row["loss"] = summed[0] / Math.Max(1, targets);
        row["grad_norm"] = gradNorm;
        row["skipped_steps"] = optimizer.SkippedSteps;
        row["lr"] = optimizer.LearningRate;
        row["tokens_per_s"] = summed[1] / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
        clock.Restart();
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
                var logprobs = TokenLogprobs.Of(model.Forward(batch.Ids, batch.AttentionMask), batch.Ids);
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
