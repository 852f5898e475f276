using RlhfSharp.Training;

namespace RlhfSharp.Algorithms.Sft;

/// <summary>Supervised fine-tuning on demonstrations. Defaults are TRL's <c>SFTConfig</c> (v0.12+) unless noted.</summary>
public sealed record SftConfig : EpochStageConfig
{
    /// <summary>
    /// Concatenate examples into blocks of <see cref="EpochStageConfig.MaxLength"/> tokens (TRL <c>packing</c> = false by default): fewer
    /// pad tokens, at the price of attention across example boundaries.
    /// </summary>
    public bool Packing { get; init; }
    /// <summary>TRL <c>learning_rate</c> = 2e-5, linear decay (HF Trainer), no weight decay, no warmup.</summary>
    public OptimizerConfig Optimizer { get; init; } = new() { LearningRate = 2e-5, Schedule = ScheduleKind.Linear, WarmupRatio = 0, MinLearningRateRatio = 0, Beta2 = 0.999 };
}
