using System.ComponentModel.DataAnnotations;
using RlhfSharp.Lora;
using RlhfSharp.Training;

namespace RlhfSharp.Algorithms.Sft;

/// <summary>Supervised fine-tuning on demonstrations. Defaults are TRL's <c>SFTConfig</c> (v0.12+) unless noted.</summary>
public sealed record SftConfig
{
    /// <summary>TRL <c>num_train_epochs</c> = 3 (InstructGPT trained its SFT models for 16 epochs, §3.5).</summary>
    [Range(1, int.MaxValue)]
    public int Epochs { get; init; } = 3;
    /// <summary>TRL <c>per_device_train_batch_size</c> = 8.</summary>
    [Range(1, int.MaxValue)]
    public int BatchSize { get; init; } = 8;
    /// <summary>TRL <c>max_length</c> = 1024; longer examples keep their head.</summary>
    [Range(2, int.MaxValue)]
    public int MaxLength { get; init; } = 1024;
    /// <summary>
    /// Concatenate examples into blocks of <see cref="MaxLength"/> tokens (TRL <c>packing</c> = false by default): fewer
    /// pad tokens, at the price of attention across example boundaries.
    /// </summary>
    public bool Packing { get; init; }
    /// <summary>TRL <c>learning_rate</c> = 2e-5, linear decay (HF Trainer), no weight decay, no warmup.</summary>
    public OptimizerConfig Optimizer { get; init; } = new() { LearningRate = 2e-5, Schedule = ScheduleKind.Linear, WarmupRatio = 0, MinLearningRateRatio = 0, Beta2 = 0.999 };
    /// <summary>Save resumable state every this many optimizer steps (and on Ctrl-C).</summary>
    [Range(0, int.MaxValue)]
    public int SaveEvery { get; init; } = 50;
    /// <summary>How many of the newest checkpoints stay on disk (HF Trainer's save_total_limit); 2 leaves a fallback should the newest be damaged.</summary>
    [Range(1, int.MaxValue)]
    public int KeepLast { get; init; } = 2;
    public ulong Seed { get; init; } = 42;
    /// <summary>Train LoRA adapters only, base weights frozen (<see cref="LoraConfig"/>); null = full fine-tuning.</summary>
    public LoraConfig? Lora { get; init; }
}
