using System.Diagnostics;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.RejectionSampling;

/// <summary>
/// Best-of-n fine-tuning rounds: the policy samples n completions per prompt, the reward picks the best of each
/// prompt, and supervised fine-tuning on the picks (loss on the completion only) moves the policy towards them.
/// </summary>
public sealed class RejectionSamplingTrainer(CausalLM policy, Func<SampleBatch, Tensor> score, Sampler sampler, int padId, int? eosId, RejectionSamplingConfig config) : StageTrainer
{
    /// <summary>
    /// Runs the rounds; with <paramref name="state"/>, the policy is saved after every round and a stopped run resumes
    /// at the next one (<see cref="RoundCheckpoint"/>).
    /// </summary>
    public Dictionary<string, double> Train(IReadOnlyList<int[]> prompts, StageState? state = null, CancellationToken cancel = default)
    {
        if (prompts.Count == 0) throw new RlhfException("rejection sampling: no prompts.");
        var loop = new RoundLoop { Stage = "rs", Rounds = config.Iterations, Policy = policy, State = state, Metrics = Metrics, Progress = Progress };
        return loop.RunSampleAndTrain(prompts, config.PromptsPerIteration, config.Seed, (chosen, round, row) =>
        {
            var (picks, meanReward, meanBest) = SampleAndSelect(chosen, round, cancel);
            row["reward_mean"] = meanReward;
            row["reward_best_mean"] = meanBest;
            row["selected"] = picks.Count;
            return picks;
        }, (picks, round) => new SftTrainer(policy, config.Sft with { Seed = config.Seed + (ulong)round }, padId, eosId).Train(picks, [], cancel: cancel), "sft_", cancel);
    }

    /// <summary>n samples per prompt in one left-padded batch; the best of each prompt becomes an SFT example.</summary>
    (List<SftExample> Picks, double MeanReward, double MeanBest) SampleAndSelect(List<int[]> prompts, int round, CancellationToken cancel)
    {
        int n = config.SamplesPerPrompt;
        policy.eval();
        using var scope = NewDisposeScope();
        using var batch = sampler.SampleGroups(prompts, n, new SamplingOptions
        {
            MaxNewTokens = config.MaxNewTokens, Temperature = config.Temperature, Seed = config.Seed + (ulong)round * 7919,
        }, cancel);
        var rewards = score(batch).to(float32).cpu().data<float>().ToArray();
        var picks = new List<SftExample>();
        double best = 0;
        for (int i = 0; i < prompts.Count; i++)
        {
            int pick = Enumerable.Range(i * n, n).MaxBy(j => rewards[j]);
            best += rewards[pick];
            var response = batch.NewTokens[pick];
            if (response.Length == 0) continue;
            picks.Add(new SftExample([.. prompts[i], .. response], [.. prompts[i].Select(_ => false), .. response.Select(_ => true)]));
        }
        return (picks, rewards.Average(), best / prompts.Count);
    }
}
