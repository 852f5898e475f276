using RlhfSharp.Algorithms.Common;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Reward;

/// <summary>
/// Trains a scalar reward on human rankings with InstructGPT's K-wise loss: every one of the C(K,2) pairs of a
/// prompt's responses in the same batch (Eq. 1), the pairwise Bradley–Terry loss with an optional margin when K = 2.
/// </summary>
/// <remarks>The model is a decoder-only <see cref="ScoreModel"/> or a T5 <see cref="Models.T5.T5ForSequenceClassification"/> (<see cref="IRewardModel"/>).</remarks>
public sealed class RewardTrainer(IRewardModel model, RewardConfig config, int padId) : StageTrainer
{
    public Dictionary<string, double> Train(IReadOnlyList<RankedGroup> train, IReadOnlyList<RankedGroup> eval, StageState? state = null, CancellationToken cancel = default)
    {
        if (train.Count == 0) throw new RlhfException("reward model: no rankings to train on.");
        using var loop = new EpochLoop("rm", config, config.Epochs, config.PromptsPerBatch, config.Optimizer, train.Count, model.Module.parameters(),
            new Dictionary<string, nn.Module> { ["reward"] = model.Module })
        {
            State = state, Metrics = Metrics, Progress = Progress, Evaluate = eval.Count > 0 ? () => Evaluate(eval) : null,
        };
        config.SwitchDropout(model.Module);
        model.Module.train();
        loop.Run((step, row) =>
        {
            var indices = loop.Batch(step);
            // Each rank's loss is its shard's sum over the step's group count: the ranks' and the micro-batches' (of
            // prompts_per_batch prompts, gradient_accumulation of them a step) gradients add up to the step's.
            var mine = DataParallel.Shard(indices);
            double loss = 0, correct = 0, pairs = 0, bestSum = 0;
            for (int m = 0; m < mine.Count; m += config.PromptsPerBatch)
            {
                using var scope = NewDisposeScope();
                var (l, c, p, b) = Loss(mine.Skip(m).Take(config.PromptsPerBatch).Select(i => train[i]).ToList(), indices.Count);
                l?.backward();
                loss += l?.item<float>() ?? 0; correct += c; pairs += p; bestSum += b;
            }
            // Summed over the ranks first, so every rank sees the same loss and skips (or not) the same step.
            var s = DataParallel.Sum(loss, correct, pairs, bestSum, mine.Sum(i => train[i].Sequences.Count));
            double gradNorm = loop.Optimizer.Apply(s[0]);
            loop.EndStep(row, step, gradNorm, [KeyValuePair.Create("loss", s[0]), KeyValuePair.Create("accuracy", s[1] / Math.Max(1, s[2])),
                KeyValuePair.Create("reward_best_mean", s[3] / indices.Count)], "sequences_per_s", s[4]);
        }, cancel);
        model.Module.eval();
        return eval.Count > 0 ? Evaluate(eval) : new Dictionary<string, double>();
    }

    /// <summary>Scores every sequence of the groups in one forward pass; returns them per group.</summary>
    List<Tensor> Scores(IReadOnlyList<RankedGroup> groups)
    {
        var sequences = groups.SelectMany(g => g.Sequences).Select(s => s.Length > config.MaxLength ? s[..config.MaxLength] : s).ToList();
        var batch = TokenBatch.RightPad(sequences, padId, model.Device);
        var scores = model.Scores(batch.Ids, batch.AttentionMask).select(1, 0);
        var result = new List<Tensor>();
        long offset = 0;
        foreach (var g in groups) { result.Add(scores.narrow(0, offset, g.Sequences.Count)); offset += g.Sequences.Count; }
        return result;
    }

    /// <summary>
    /// The groups' summed loss over <paramref name="denominator"/> (null when there are no groups), with the counts
    /// behind the pair accuracy: pairs ordered as people did, pairs, and the sum of the best responses' scores.
    /// </summary>
    (Tensor? Loss, double Correct, double Pairs, double BestSum) Loss(IReadOnlyList<RankedGroup> groups, int denominator)
    {
        if (groups.Count == 0) return (null, 0, 0, 0);
        var perGroup = Scores(groups);
        // The router's loss of the one forward over the groups' sequences, weighted like the groups' share of the step.
        var aux = RouterBalanceLoss.Weighted(model.Module);
        var losses = new List<Tensor>();
        for (int i = 0; i < groups.Count; i++)
        {
            var s = perGroup[i];
            if (s.shape[0] == 2)
            {
                Tensor? margin = groups[i].Margin is double m ? tensor(new[] { (float)m }, device: s.device) : null;
                losses.Add(RewardLoss.Pairwise(s.narrow(0, 0, 1), s.narrow(0, 1, 1), margin).Loss);
            }
            else losses.Add(RewardLoss.KWiseRanking(s.unsqueeze(0)).Loss);
            if (config.CenteringCoef > 0)
            {
                // Eisenstein et al.'s coef·(r_i + r_j)² over every pair of the group (for K = 2 exactly their term).
                var pairSums = (s.unsqueeze(1) + s.unsqueeze(0)).square().triu(1);
                losses.Add(config.CenteringCoef * pairSums.sum() / (s.shape[0] * (s.shape[0] - 1) / 2.0));
            }
        }
        var loss = stack(losses).sum() / denominator;
        if (aux is not null) loss = loss + aux * ((double)groups.Count / denominator);
        var (correct, pairs, best) = PairAccuracy(perGroup);
        return (loss, correct, pairs, best);
    }

    static (double Correct, double Pairs, double BestSum) PairAccuracy(List<Tensor> perGroup)
    {
        double correct = 0, pairs = 0, best = 0;
        foreach (var s in perGroup)
        {
            var v = s.detach().cpu().data<float>().ToArray();
            best += v[0];
            for (int i = 0; i < v.Length; i++)
                for (int j = i + 1; j < v.Length; j++) { pairs++; if (v[i] > v[j]) correct++; }
        }
        return (correct, pairs, best);
    }

    /// <summary>Loss and pairwise accuracy (the fraction of ranked pairs the RM orders as people did); each rank scores its shard.</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<RankedGroup> eval)
    {
        int count = eval.Count;
        eval = DataParallel.Shard(eval);
        bool wasTraining = model.Module.training;
        model.Module.eval();
        double loss = 0, correct = 0, pairs = 0;
        using (no_grad())
        {
            for (int i = 0; i < eval.Count; i += config.PromptsPerBatch)
            {
                using var scope = NewDisposeScope();
                var groups = eval.Skip(i).Take(config.PromptsPerBatch).ToList();
                var (l, c, p, _) = Loss(groups, 1);
                loss += l!.item<float>();
                correct += c; pairs += p;
            }
        }
        if (wasTraining) model.Module.train();
        var s = DataParallel.Sum(loss, correct, pairs);
        return new Dictionary<string, double> { ["eval_loss"] = s[0] / Math.Max(1, count), ["eval_accuracy"] = s[1] / Math.Max(1, s[2]) };
    }

    /// <summary>
    /// Sets <see cref="ScoreModel.RewardMean"/>/<see cref="ScoreModel.RewardStd"/> from the raw scores of SFT
    /// demonstrations (prompt + demonstration ids), so they score 0 on average afterwards (InstructGPT §3.5).
    /// </summary>
    public void NormalizeOn(IReadOnlyList<int[]> demonstrations)
    {
        if (demonstrations.Count == 0) return;
        model.Module.eval();
        var values = new List<float>();
        model.RewardMean = null;
        using (no_grad())
            for (int i = 0; i < demonstrations.Count; i += config.PromptsPerBatch)
            {
                using var scope = NewDisposeScope();
                var chunk = demonstrations.Skip(i).Take(config.PromptsPerBatch).Select(s => s.Length > config.MaxLength ? s[..config.MaxLength] : s).ToList();
                var batch = TokenBatch.RightPad(chunk, padId, model.Device);
                values.AddRange(model.Rewards(batch.Ids, batch.AttentionMask).cpu().data<float>().ToArray());
            }
        double mean = values.Average();
        model.RewardMean = mean;
        model.RewardStd = Math.Sqrt(values.Select(v => (v - mean) * (v - mean)).Sum() / Math.Max(1, values.Count - 1));
    }
}
