using System.Diagnostics;
using RlhfSharp.Data;
using RlhfSharp.Distributed;
using RlhfSharp.Models.T5;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Sft;

/// <summary>
/// Supervised fine-tuning of an encoder-decoder (T5): the prompt is the encoder's input and the cross-entropy is on
/// the target tokens only, the decoder reading them shifted right behind the start token (transformers v4.44
/// T5ForConditionalGeneration with <c>labels</c>; TRL's SFT of encoder-decoder models). As in <see cref="SftTrainer"/>,
/// the loss is averaged over every target token of an optimizer step, so accumulation equals one large batch. With LoRA
/// attached (<see cref="Lora.T5Lora.Attach"/>) only the adapters require gradients, so only they are trained.
/// </summary>
public sealed class Seq2SeqSftTrainer(T5ForConditionalGeneration model, SftConfig config, int padId)
{
    public IProgress<TrainingProgress>? Progress { get; init; }
    public MetricsLog? Metrics { get; init; }

    public Dictionary<string, double> Train(IReadOnlyList<Seq2SeqExample> train, IReadOnlyList<Seq2SeqExample> eval, StageState? state = null, CancellationToken cancel = default)
    {
        if (train.Count == 0) throw new RlhfException("SFT: no training examples.");
        if (config.Packing) throw new RlhfException("SFT packing is for decoder-only models; an encoder-decoder trains on (prompt, target) pairs.");
        var examples = train.Select(e => e.Truncate(config.MaxLength)).Where(e => e.TargetIds.Length > 0 && e.PromptIds.Length > 0).ToList();
        if (examples.Count == 0) throw new RlhfException("SFT: no example has both a prompt and a target.");
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
        var clock = Stopwatch.StartNew();
        loop.Run((step, row) =>
        {
            var indices = SeededOrder.EpochBatch(examples.Count, perStep, step, config.Seed);
            double targets = indices.Sum(i => examples[i].TargetIds.Length);
            var mine = DataParallel.Shard(indices);
            double lossSum = 0, tokens = 0;
            for (int m = 0; m < mine.Count; m += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var micro = mine.Skip(m).Take(config.BatchSize).Select(i => examples[i]).ToList();
                var nll = -TargetLogprobs(micro).sum();
                (nll / Math.Max(1, targets)).backward();
                lossSum += nll.item<float>();
                tokens += micro.Sum(e => e.PromptIds.Length + e.TargetIds.Length);
            }
            SftTrainer.FinishStep(row, lossSum, tokens, targets, step, stepsPerEpoch, optimizer, clock);
        }, cancel);
        model.eval();
        return eval.Count > 0 ? Evaluate(eval) : new Dictionary<string, double>();
    }

    /// <summary>Log-probabilities of every target token (B, Tt), 0 at padding: encoder over the prompts, decoder over the
    /// targets shifted right.</summary>
    public Tensor TargetLogprobs(IReadOnlyList<Seq2SeqExample> batch) =>
        Seq2SeqLogprobs.Of(model, batch.Select(e => e.PromptIds).ToList(), batch.Select(e => e.TargetIds).ToList(), padId).Logprobs;

    /// <summary>Mean negative log-likelihood per target token and its perplexity (each rank scores its shard).</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<Seq2SeqExample> eval)
    {
        eval = DataParallel.Shard(eval);
        bool wasTraining = model.training;
        model.eval();
        double nll = 0, count = 0;
        using (no_grad())
        {
            for (int i = 0; i < eval.Count; i += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var micro = eval.Skip(i).Take(config.BatchSize).Select(e => e.Truncate(config.MaxLength)).ToList();
                nll -= TargetLogprobs(micro).sum().item<float>();
                count += micro.Sum(e => e.TargetIds.Length);
            }
        }
        if (wasTraining) model.train();
        var summed = DataParallel.Sum(nll, count);
        double mean = summed[0] / Math.Max(1, summed[1]);
        return new Dictionary<string, double> { ["eval_loss"] = mean, ["eval_perplexity"] = Math.Exp(mean) };
    }
}
