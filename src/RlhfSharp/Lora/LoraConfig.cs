using System.Text.Json.Serialization;

namespace RlhfSharp.Lora;

/// <summary>
/// Low-rank adaptation (Hu et al. 2021): each targeted weight W is used as W + (α/r)·B·A with A (r × in) and B
/// (out × r) trained and W frozen. Defaults are alpaca-lora's <c>finetune.py</c> (tloen/alpaca-lora: r 8, α 16,
/// dropout 0.05, targets q_proj and v_proj); PEFT's own <c>LoraConfig</c> defaults are r 8, α 8, dropout 0.
/// Set it on a stage (<c>--set dpo.lora.r=8</c>, or <c>--set dpo.lora={}</c> for the defaults) to train adapters only.
/// </summary>
public sealed record LoraConfig
{
    /// <summary>Rank r of A and B: alpaca-lora <c>lora_r</c> = 8 (also PEFT's default).</summary>
    public int R { get; init; } = 8;
    /// <summary>α: the update is scaled by α/r (PEFT <c>lora_alpha</c>); alpaca-lora <c>lora_alpha</c> = 16.</summary>
    public double Alpha { get; init; } = 16;
    /// <summary>Dropout on the adapter's input only (PEFT <c>lora_dropout</c>); alpaca-lora 0.05.</summary>
    public double Dropout { get; init; } = 0.05;
    /// <summary>
    /// HF module names to adapt, matched as PEFT does (the full module name or its last dotted parts), e.g.
    /// <c>["q_proj", "v_proj"]</c>, <c>["c_attn"]</c>, or <c>["all-linear"]</c> for every projection of the body. Null:
    /// PEFT's default for the model type (<c>TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING</c>: q_proj and
    /// v_proj for llama, mistral and qwen2, c_attn for gpt2).
    /// </summary>
    public List<string>? TargetModules { get; init; }

    /// <summary>The α/r factor on B·A.</summary>
    [JsonIgnore]
    public double Scaling => Alpha / R;

    /// <summary>Throws when a value cannot work, naming the recipe key.</summary>
    public void Validate(string section)
    {
        if (R < 1) throw new RlhfException($"{section}.lora.r must be at least 1 (got {R}).");
        if (Dropout is < 0 or >= 1 || double.IsNaN(Dropout)) throw new RlhfException($"{section}.lora.dropout must be in [0, 1) (got {Dropout}).");
        if (TargetModules is { Count: 0 }) throw new RlhfException($"{section}.lora.target_modules is empty: name modules (e.g. [\"q_proj\", \"v_proj\"]) or leave it out for the model's default.");
    }
}
