using System.Diagnostics;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.OnlineDpo;

/// <summary>
/// Online DPO rounds: two samples per prompt from the current policy, the higher-scored one is "chosen", and a DPO
/// pass on those pairs (reference = the frozen starting policy) moves the policy. Ties carry no preference and are
/// dropped.
/// </summary>
public sealed class OnlineDpoTrainer(CausalLM policy, CausalLM reference, Func<SampleBatch, Tensor> score, Sampler sampler, int padId, OnlineDpoConfig config) : StageTrainer
{
    /// <summary>
    /// Runs the rounds; with <paramref name="state"/>, the policy is saved after every round and a stopped run resumes
    /// at the next one (<see cref="RoundCheckpoint"/>).
    /// </summary>
    public Dictionary<string, double> Train(IReadOnlyList<int[]> prompts, StageState? state = null, CancellationToken cancel = default)
    {
        if (prompts.Count == 0) throw new RlhfException("online DPO: no prompts.");
        var loop = new RoundLoop { Stage = "online_dpo", Rounds = config.Iterations, Policy = policy, State = state, Metrics = Metrics, Progress = Progress };
        return loop.RunSampleAndTrain(prompts, config.PromptsPerIteration, config.Seed, (chosen, round, row) =>
        {
            var (pairs, meanReward) = SampleAndLabel(chosen, round, cancel);
            row["reward_mean"] = meanReward;
            row["pairs"] = pairs.Count;
            return pairs;
        }, (pairs, round) =>
        {
            var trainer = new PreferenceTrainer(policy, reference, config.Dpo with { Seed = config.Seed + (ulong)round }, padId);
            return pairs.Count > 0 ? trainer.Train(pairs, [], cancel: cancel) : new Dictionary<string, double>();
        }, "dpo_", cancel);
    }

    (List<PreferenceExample> Pairs, double MeanReward) SampleAndLabel(List<int[]> prompts, int round, CancellationToken cancel)
    {
        policy.eval();
        using var scope = NewDisposeScope();
        using var batch = sampler.SampleGroups(prompts, 2, new SamplingOptions
        {
            MaxNewTokens = config.MaxNewTokens, Temperature = config.Temperature, Seed = config.Seed + (ulong)round * 7919,
        }, cancel);
        var rewards = score(batch).to(float32).cpu().data<float>().ToArray();
        var pairs = new List<PreferenceExample>();
        for (int i = 0; i < prompts.Count; i++)
        {
            int a = 2 * i, b = 2 * i + 1;
            if (rewards[a] == rewards[b] || batch.NewTokens[a].Length == 0 || batch.NewTokens[b].Length == 0) continue;
            var (win, lose) = rewards[a] > rewards[b] ? (a, b) : (b, a);
            pairs.Add(new PreferenceExample(prompts[i], batch.NewTokens[win], batch.NewTokens[lose]));
        }
        return (pairs, rewards.Average());
    }
}
