using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.ProcessReward;

/// <summary>
/// Trains a process reward model: a <see cref="ScoreModel"/> with two labels read at every token (token classification, as
/// TRL's PRMTrainer), the loss only where a step ends (<see cref="ProcessRewardLoss"/>). Step accuracy is TRL's
/// <c>compute_accuracy</c>: argmax of the two classes against the (rounded) label at the labelled tokens.
/// </summary>
public sealed class ProcessRewardTrainer(ScoreModel model, ProcessRewardConfig config, int padId) : StageTrainer
{
    public Dictionary<string, double> Train(IReadOnlyList<ProcessRewardExample> train, IReadOnlyList<ProcessRewardExample> eval, StageState? state = null, CancellationToken cancel = default)
    {
        if (train.Count == 0) throw new RlhfException("process reward model: no step-labelled completions to train on.");
        if (model.Config.NumLabels != 2) throw new RlhfException($"process reward model: the score head must have 2 labels (bad, good), not {model.Config.NumLabels}.");
        using var loop = new EpochLoop("prm", config, config.Optimizer, train.Count, model.parameters(), new Dictionary<string, nn.Module> { ["prm"] = model })
        {
            State = state, Metrics = Metrics, Progress = Progress, Evaluate = eval.Count > 0 ? () => Evaluate(eval) : null,
        };
        config.SwitchDropout(model);
        model.train();
        loop.Run((step, row) =>
        {
            var indices = loop.Batch(step);
            var mine = DataParallel.Shard(indices);
            double loss = 0, correct = 0, labelled = 0;
            // Micro-batches of batch_size; each one's mean over its labelled tokens is weighted by its share of the step
            // (all ranks'), so the ranks' and micro-batches' gradients add up.
            for (int m = 0; m < mine.Count; m += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var micro = mine.Skip(m).Take(config.BatchSize).Select(i => train[i]).ToList();
                var (l, c, n) = Loss(micro);
                if (l is not null) (l * ((double)micro.Count / indices.Count)).backward();
                loss += (l?.item<float>() ?? 0) * micro.Count / indices.Count; correct += c; labelled += n;
            }
            var s = DataParallel.Sum(loss, correct, labelled, mine.Sum(i => train[i].InputIds.Length));
            double gradNorm = loop.Optimizer.Apply(s[0]);
            loop.EndStep(row, step, gradNorm, [KeyValuePair.Create("loss", s[0]), KeyValuePair.Create("step_accuracy", s[1] / Math.Max(1, s[2]))], "tokens_per_s", s[3]);
        }, cancel);
        model.eval();
        return eval.Count > 0 ? Evaluate(eval) : new Dictionary<string, double>();
    }

    /// <summary>The batch's mean loss over its labelled tokens, the correct and labelled token counts.</summary>
    (Tensor? Loss, double Correct, double Labelled) Loss(IReadOnlyList<ProcessRewardExample> batch)
    {
        if (batch.Count == 0) return (null, 0, 0);
        var device = model.model.Embeddings.weight!.device;
        var tokens = TokenBatch.RightPad(batch.Select(e => e.InputIds).ToList(), padId, device);
        long t = tokens.Ids.shape[1];
        var labels = new float[batch.Count * t];
        Array.Fill(labels, ProcessRewardLoss.Ignore);
        for (int i = 0; i < batch.Count; i++) Array.Copy(batch[i].Labels, 0, labels, i * t, batch[i].Labels.Length);
        var labelTensor = tensor(labels, [batch.Count, t], device: device);
        var logits = model.TokenScores(tokens.Ids, tokens.AttentionMask, Transformer.PositionsFromMask(tokens.AttentionMask));
        var loss = ProcessRewardLoss.Loss(logits, labelTensor);
        if (Common.RouterBalanceLoss.Weighted(model) is { } aux) loss = loss + aux;
        using var _ = no_grad();
        var mask = labelTensor.ne(ProcessRewardLoss.Ignore);
        var predicted = logits.argmax(-1);
        var target = labelTensor.ge(0.5f).to(int64);
        double correct = predicted.eq(target).logical_and(mask).sum().item<long>();
        return (loss, correct, mask.sum().item<long>());
    }

    /// <summary>Held-out loss (mean over batches) and step accuracy.</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<ProcessRewardExample> eval)
    {
        bool wasTraining = model.training;
        model.eval();
        double loss = 0, correct = 0, labelled = 0;
        int batches = 0;
        using (no_grad())
            for (int i = 0; i < eval.Count; i += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var (l, c, n) = Loss(eval.Skip(i).Take(config.BatchSize).ToList());
                loss += l!.item<float>(); correct += c; labelled += n; batches++;
            }
        if (wasTraining) model.train();
        return new Dictionary<string, double> { ["eval_loss"] = loss / Math.Max(1, batches), ["eval_step_accuracy"] = correct / Math.Max(1, labelled) };
    }
}
