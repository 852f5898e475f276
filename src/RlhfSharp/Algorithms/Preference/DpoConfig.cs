using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using RlhfSharp.Training;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>
/// Offline preference optimisation (DPO, IPO, cDPO, SimPO, ORPO, KTO) with <see cref="PreferenceTrainer"/>. Defaults are
/// TRL's <c>DPOConfig</c> (huggingface/trl@f2cd577 <c>trl/trainer/dpo_config.py</c>) unless noted.
/// </summary>
public sealed record DpoConfig : EpochStageConfig
{
    /// <summary>TRL <c>loss_type</c> = "sigmoid" (DPO).</summary>
    public PreferenceLossKind Loss { get; init; } = PreferenceLossKind.Sigmoid;
    /// <summary>
    /// TRL <c>disable_dropout</c> = True in dpo_config.py, kto_config.py, cpo_config.py (SimPO) and orpo_config.py, and in
    /// online_dpo_config.py (online DPO's inner config): the policy's log-probs are compared with the dropout-free reference's.
    /// </summary>
    public override bool DisableDropout { get; init; } = true;
    /// <summary>
    /// β: TRL <c>DPOConfig.beta</c> = 0.1 (also <c>CPOConfig</c>, <c>ORPOConfig</c> λ and <c>KTOConfig</c>). The SimPO
    /// paper tunes β in 2.0–2.5; raise it for <see cref="PreferenceLossKind.Simpo"/>.
    /// </summary>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double Beta { get; init; } = 0.1;
    /// <summary>cDPO's label-flip probability ε (TRL <c>label_smoothing</c> = 0); also used by SimPO.</summary>
    [Range(0.0, 0.5)]
    public double LabelSmoothing { get; init; } = 0.0;
    /// <summary>SimPO's target margin γ: 0.5 (TRL <c>CPOConfig.simpo_gamma</c>; SimPO paper γ/β ≈ 0.5).</summary>
    public double SimpoGamma { get; init; } = 0.5;
    /// <summary>KTO λ_D: TRL <c>KTOConfig.desirable_weight</c> = 1.0.</summary>
    [Range(0.0, double.MaxValue)]
    public double DesirableWeight { get; init; } = 1.0;
    /// <summary>KTO λ_U: TRL <c>KTOConfig.undesirable_weight</c> = 1.0.</summary>
    [Range(0.0, double.MaxValue)]
    public double UndesirableWeight { get; init; } = 1.0;
    /// <summary>TRL <c>max_prompt_length</c> = 512; longer prompts keep their end.</summary>
    [Range(1, int.MaxValue)]
    public int MaxPromptLength { get; init; } = 512;
    /// <summary>
    /// Compute the reference log-probs once before training instead of in every step (TRL
    /// <c>precompute_ref_log_probs</c> = false): one reference forward per example instead of one per epoch.
    /// </summary>
    public bool PrecomputeReferenceLogprobs { get; init; }
    /// <summary>
    /// The element type the frozen reference model is held in: float32 (transformers' default) or bf16/f16, half the
    /// memory (its log-probs are still computed in float32). Issue #20's dtype key for frozen roles.
    /// </summary>
    public string ReferenceDtype { get; init; } = "float32";
    /// <summary>TRL <c>learning_rate</c> = 1e-6, linear decay, no warmup, no weight decay (HF <c>TrainingArguments</c>).</summary>
    public OptimizerConfig Optimizer { get; init; } = new() { LearningRate = 1e-6, Schedule = ScheduleKind.Linear, WarmupRatio = 0, MinLearningRateRatio = 0, Beta2 = 0.999 };

    /// <inheritdoc/>
    public override void Validate(string section)
    {
        base.Validate(section);
        ValidateReferenceDtype(section, ReferenceDtype);
        if (BatchSize < 1) throw new RlhfException($"{section}.batch_size must be at least 1.");
        // TRL refuses a per-device batch of 1: the only mismatched pair would be the example itself, and the KL
        // reference point would equal the implied reward.
        if (Loss == PreferenceLossKind.Kto && BatchSize < 2) throw new RlhfException($"KTO needs {section}.batch_size ≥ 2 for its KL reference point.");
    }

    /// <summary>Whether the loss compares against a frozen reference model (SimPO and ORPO do not).</summary>
    [JsonIgnore]
    public bool NeedsReference => Loss is not (PreferenceLossKind.Simpo or PreferenceLossKind.Orpo);
}
