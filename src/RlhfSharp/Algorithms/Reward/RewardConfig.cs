using System.ComponentModel.DataAnnotations;
using RlhfSharp.Training;

namespace RlhfSharp.Algorithms.Reward;

/// <summary>Reward-model training on rankings. Defaults follow InstructGPT (Ouyang et al. 2022, §3.5, App. C.2) and OpenRLHF's train_rm.</summary>
public sealed record RewardConfig : StageConfig
{
    /// <summary>TRL <c>RewardConfig.disable_dropout</c> = True (trl/trainer/reward_config.py at huggingface/trl@f2cd577).</summary>
    public override bool DisableDropout { get; init; } = true;
    /// <summary>One epoch: InstructGPT found RMs overfit after one pass over the comparisons (§3.5); OpenRLHF max_epochs = 1.</summary>
    [Range(1, int.MaxValue)]
    public int Epochs { get; init; } = 1;
    /// <summary>Prompts per batch, all C(K,2) pairs of each together (InstructGPT used 64).</summary>
    [Range(1, int.MaxValue)]
    public int PromptsPerBatch { get; init; } = 64;
    /// <summary>OpenRLHF train_rm max_len = 512.</summary>
    [Range(2, int.MaxValue)]
    public int MaxLength { get; init; } = 512;
    /// <summary>InstructGPT 6B RM: lr 9e-6, cosine schedule; OpenRLHF train_rm: 9e-6, warmup 3%, min lr 0.1×.</summary>
    public OptimizerConfig Optimizer { get; init; } = new() { LearningRate = 9e-6 };
    /// <summary>Reward-centering coefficient (Eisenstein et al. 2023 use 0.01); 0 = off.</summary>
    [Range(0.0, double.MaxValue)]
    public double CenteringCoef { get; init; } = 0.0;
    /// <summary>
    /// Normalise the RM on SFT demonstrations: they score 0 on average (InstructGPT §3.5) with unit standard deviation
    /// (OpenRLHF <c>normalize_reward</c>: <c>(r − mean) / std</c>).
    /// </summary>
    public bool NormalizeOnDemonstrations { get; init; } = true;

    /// <inheritdoc/>
    public override void Validate(string section)
    {
        base.Validate(section);
        RefuseLogprobChunks(section, "the reward model reads a score head, not token log-probs");
    }
}
