using System.ComponentModel.DataAnnotations;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Training;

namespace RlhfSharp.Algorithms.RejectionSampling;

/// <summary>
/// Rejection-sampling fine-tuning (best-of-n distillation): sample n completions per prompt from the current policy,
/// keep the one the reward likes best, fine-tune on those, repeat (Llama 2, Touvron et al. 2023 §3.2.3;
/// RAFT, Dong et al. 2023).
/// </summary>
public sealed record RejectionSamplingConfig
{
    /// <summary>Rounds of sample → select → fine-tune (Llama 2 ran five RLHF versions, V1–V5).</summary>
    [Range(1, int.MaxValue)]
    public int Iterations { get; init; } = 3;
    /// <summary>Prompts sampled per round (all of them when fewer).</summary>
    [Range(1, int.MaxValue)]
    public int PromptsPerIteration { get; init; } = 256;
    /// <summary>n of best-of-n (RAFT's K; Llama 2 sampled up to 10 per prompt).</summary>
    [Range(1, int.MaxValue)]
    public int SamplesPerPrompt { get; init; } = 4;
    [Range(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 256;
    [Range(0.0, double.MaxValue)]
    public double Temperature { get; init; } = 1.0;
    /// <summary>The fine-tuning of each round: one epoch over the selected samples (RAFT).</summary>
    public SftConfig Sft { get; init; } = new() { Epochs = 1, Optimizer = new OptimizerConfig { LearningRate = 1e-5, Schedule = ScheduleKind.Constant, WarmupRatio = 0 } };
    public ulong Seed { get; init; } = 42;
}
