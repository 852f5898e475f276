using System.ComponentModel.DataAnnotations;

namespace RlhfSharp.Training;

/// <summary>
/// The fields of the stages that train epochs over a fixed dataset in micro-batches (SFT, the preference family), as
/// TRL's <c>SFTConfig</c> and <c>DPOConfig</c> both take them from HF <c>TrainingArguments</c>; defaults are TRL's.
/// </summary>
public abstract record EpochStageConfig : StageConfig
{
    /// <summary>TRL <c>num_train_epochs</c> = 3 (HF <c>TrainingArguments</c>; InstructGPT trained its SFT models for 16 epochs, §3.5).</summary>
    [Range(1, int.MaxValue)]
    public int Epochs { get; init; } = 3;
    /// <summary>Examples (preference family: pairs, KTO: completions) per micro-batch: TRL <c>per_device_train_batch_size</c> = 8.</summary>
    [Range(1, int.MaxValue)]
    public int BatchSize { get; init; } = 8;
    /// <summary>TRL <c>max_length</c> = 1024: prompt + completion ids; longer examples are cut.</summary>
    [Range(2, int.MaxValue)]
    public int MaxLength { get; init; } = 1024;
}
