using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Rewards;
using static TorchSharp.torch;

namespace RlhfSharp.Pipeline;

/// <summary>
/// What the alignment methods train on, however it was obtained: the recipe's files for the stage commands
/// (<see cref="RecipeData"/>), the simulated people's labels for <c>rlhf pipeline</c>. Each source is read only when a
/// method asks for it, so a command reads only the files it needs.
/// </summary>
public sealed record MethodData
{
    /// <summary>Prompt token ids of the online methods (PPO, the group-RL family, RS, online DPO).</summary>
    public required Func<List<int[]>> Prompts { get; init; }
    /// <summary>Demonstrations for PPO-ptx (empty: no ptx term).</summary>
    public required Func<List<SftExample>> PtxExamples { get; init; }
    /// <summary>Preference pairs, tokenised for the config and split into train and held-out.</summary>
    public required Func<DpoConfig, (List<PreferenceExample> Train, List<PreferenceExample> Eval)> Pairs { get; init; }
    /// <summary>KTO's labelled completions, tokenised for the config and split into train and held-out.</summary>
    public required Func<DpoConfig, (List<LabeledExample> Train, List<LabeledExample> Eval)> Labeled { get; init; }
    /// <summary>ILQL's scored completions, tokenised for the config and split into train and held-out.</summary>
    public Func<Algorithms.Ilql.IlqlConfig, (List<ScoredExample> Train, List<ScoredExample> Eval)>? Scored { get; init; }
    /// <summary>The reward of the online methods (null: the run's reward model alone).</summary>
    public IReadOnlyList<RewardSource>? Rewards { get; init; }
    /// <summary>Extra numbers logged for each rollout batch (the pipeline's hidden gold).</summary>
    public Func<SampleBatch, IReadOnlyDictionary<string, double>>? RolloutMetrics { get; init; }
    /// <summary>Labels online DPO's pairs instead of the rewards (the pipeline's simulated annotators).</summary>
    public Func<SampleBatch, Tensor>? OnlineDpoJudge { get; init; }
}
