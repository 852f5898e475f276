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
    /// Token positions per chunk when the stage takes log-probs (and entropies) of a causal LM: each chunk's logits are
    /// made from the final hidden states, reduced to log-probs and dropped, in the backward too (<see cref="ChunkedLogprobs"/>,
    /// as Liger-Kernel's fused linear cross-entropy), so the (B, T, V) logits never exist; 256 cuts the peak of
    /// Qwen2.5-0.5B's head at 8 × 512 tokens several times over (docs/PERFORMANCE.md). SFT's loss (and PPO-ptx's) forms its
    /// gradients in the forward, so its chunks are computed once; the other stages' are recomputed in the backward. On a
    /// CPU with oneMKL, chunks of 512 or more keep the head's matmuls at full speed (fewer rows take a slower kernel,
    /// docs/PERFORMANCE.md). 0 (the default) takes the full
    /// logits, as HF/TRL do without Liger: the same values to float32 round-off either way, but only 0 keeps seeded runs
    /// bit-identical to earlier versions (the head's gradient is summed chunk by chunk). Read by SFT, the preference family,
    /// PPO/A2C and the group-RL family, and through them RS and online DPO.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int LogprobChunkSize { get; init; }
    /// <summary>
    /// Recompute each decoder layer of the trained model(s) in the backward instead of keeping its activations
    /// (<see cref="Models.LayerCheckpoint"/>): activation memory falls to one (B, T, hidden) tensor per layer for about a
    /// third more compute. HF <c>TrainingArguments.gradient_checkpointing</c>, default false there and here. The same
    /// gradients either way (model and LoRA dropout replay their masks); decoder-only dense models (no T5, no mixture of experts).
    /// </summary>
    public bool GradientCheckpointing { get; init; }
    /// <summary>
    /// Turn off the trained model's dropout (its own, <see cref="Models.Dropouts"/>, and LoRA's) before training, as TRL's
    /// <c>disable_dropout</c> does with <c>disable_dropout_in_model</c> (trl/trainer/utils.py). False here (SFT, rejection
    /// sampling and ILQL keep the model's dropout: trl/trainer/sft_config.py has no such key); the stages whose TRL config or
    /// trainer turns it off override the default (DPO family, reward, PRM, PPO, group RL), each citing its source.
    /// </summary>
    public virtual bool DisableDropout { get; init; }

    /// <summary>
    /// The checks across fields that a <see cref="RangeAttribute"/> cannot express; throws an <see cref="RlhfException"/>
    /// naming the recipe key. <paramref name="section"/> is the config's key in the recipe (<c>sft</c>, <c>grpo</c>, …).
    /// </summary>
    public virtual void Validate(string section) => Lora?.Validate(section);

    /// <summary>Refuses <see cref="LogprobChunkSize"/> where it has no effect: <paramref name="why"/> says what the stage or model reads instead.</summary>
    public void RefuseLogprobChunks(string section, string why)
    {
        if (LogprobChunkSize > 0)
            throw new RlhfException($"{section}.logprob_chunk_size: {why}, so chunked log-probs do not apply; leave it at 0.");
    }

    /// <summary>
    /// Turns on <see cref="GradientCheckpointing"/> in <paramref name="model"/> (a model the stage trains) when the config
    /// asks for it; a model it cannot apply to is refused naming <c>{section}.gradient_checkpointing</c>.
    /// </summary>
    public void CheckpointLayers(TorchSharp.torch.nn.Module model, string section)
    {
        if (GradientCheckpointing) Models.LayerCheckpoint.Enable(model, $"{section}.gradient_checkpointing");
    }

    /// <summary>Applies <see cref="DisableDropout"/> to <paramref name="model"/>, a model the stage trains.</summary>
    public void SwitchDropout(TorchSharp.torch.nn.Module model)
    {
        if (DisableDropout) LoraModel.DisableDropout(model);
    }

    /// <summary>
    /// Refuses <c>disable_dropout: false</c> in a stage that takes its old log-probs in eval mode and the new ones in train
    /// mode: with dropout on they would be two different functions and the ratio would not start at 1.
    /// </summary>
    protected void RequireDropoutOff(string section)
    {
        if (!DisableDropout)
            throw new RlhfException($"{section}.disable_dropout: false is not supported: this stage's old log-probs come from the policy in eval mode and the new ones from train mode, which must be the same function (dropout off); leave it true.");
    }

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
