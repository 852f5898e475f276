using System.ComponentModel.DataAnnotations;
using RlhfSharp.Lora;

namespace RlhfSharp.Training;

/// <summary>
/// The fields every trained stage's config shares (TRL's <c>_BaseConfig</c>, HF <c>TrainingArguments</c>): how often the
/// <see cref="StepLoop"/> checkpoints, how many checkpoints stay, the seed and LoRA. Each stage's record adds its own.
/// </summary>
public abstract record StageConfig
{
    /// <summary>Save resumable state every this many optimizer steps (and on Ctrl-C); HF <c>save_steps</c> (its 500 is for GPU runs).</summary>
    [Range(0, int.MaxValue)]
    public int SaveEvery { get; init; } = 50;
    /// <summary>How many of the newest checkpoints stay on disk (HF Trainer's save_total_limit); 2 leaves a fallback should the newest be damaged.</summary>
    [Range(1, int.MaxValue)]
    public int KeepLast { get; init; } = 2;
    /// <summary>Seeds data order, sampling and new weights (HF <c>seed</c> = 42).</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>Train LoRA adapters only, base weights frozen (<see cref="LoraConfig"/>); null = full fine-tuning.</summary>
    public LoraConfig? Lora { get; init; }

    /// <summary>
    /// The checks across fields that a <see cref="RangeAttribute"/> cannot express; throws an <see cref="RlhfException"/>
    /// naming the recipe key. <paramref name="section"/> is the config's key in the recipe (<c>sft</c>, <c>grpo</c>, …).
    /// </summary>
    public virtual void Validate(string section) => Lora?.Validate(section);

    /// <summary>
    /// Checks a stage's <c>reference_dtype</c>: a dtype name, and float32 under LoRA, whose reference is the policy's own
    /// base with the adapters off (one copy of the weights, in the policy's dtype).
    /// </summary>
    protected void ValidateReferenceDtype(string section, string referenceDtype)
    {
        var dtype = Models.ModelDtype.Parse(referenceDtype, $"{section}.reference_dtype");
        if (Lora is not null && dtype != TorchSharp.torch.ScalarType.Float32)
            throw new RlhfException($"{section}.reference_dtype: with {section}.lora the reference is the policy's base with its adapters off, not a second model; leave reference_dtype at float32.");
    }
}
