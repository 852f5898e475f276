using System.ComponentModel.DataAnnotations;
using RlhfSharp.Training;

namespace RlhfSharp.Algorithms.Ilql;

/// <summary>
/// Implicit Language Q-Learning (Snell et al. 2022) with <see cref="IlqlTrainer"/>: offline RL on scored completions.
/// Defaults are trlX's (CarperAI/trlx@3340c2f <c>trlx/data/default_configs.py</c> <c>default_ilql_config</c>, fields
/// documented in <c>trlx/models/modeling_ilql.py</c> <c>ILQLConfig</c>) unless noted.
/// </summary>
public sealed record IlqlConfig : EpochStageConfig
{
    public IlqlConfig()
    {
        // trlX default_ilql_config: train.epochs = 100, train.batch_size = 128, train.seq_length = 64.
        Epochs = 100;
        BatchSize = 128;
        MaxLength = 64;
    }

    /// <summary>trlX <c>train.total_steps</c> = 1000: training stops here even if epochs remain.</summary>
    [Range(1, int.MaxValue)]
    public int TotalSteps { get; init; } = 1000;
    /// <summary>
    /// Prompt tokens kept (their end) so the completion keeps at least half of <see cref="EpochStageConfig.MaxLength"/>.
    /// trlX cuts the joined prompt + output from the right instead, which can drop a long prompt's whole output.
    /// </summary>
    [Range(1, int.MaxValue)]
    public int MaxPromptLength { get; init; } = 32;
    /// <summary>Expectile τ of V's regression on the target Q: trlX <c>tau</c> = 0.7 (0.5 is the mean, 1 the max).</summary>
    [Range(0.0, 1.0, MinimumIsExclusive = true, MaximumIsExclusive = true)]
    public double Tau { get; init; } = 0.7;
    /// <summary>Discount γ of the TD target r + γ·V(s′): trlX <c>gamma</c> = 0.99.</summary>
    [Range(0.0, 1.0)]
    public double Gamma { get; init; } = 0.99;
    /// <summary>Weight of the CQL term (cross-entropy of the Q values as logits): trlX <c>cql_scale</c> = 0.1.</summary>
    [Range(0.0, double.MaxValue)]
    public double CqlScale { get; init; } = 0.1;
    /// <summary>Weight of the AWAC-weighted language-modelling term: trlX <c>awac_scale</c> = 1.</summary>
    [Range(0.0, double.MaxValue)]
    public double AwacScale { get; init; } = 1.0;
    /// <summary>
    /// Temperature of the AWAC weights exp(β·(Q − V)): trlX <c>ILQLConfig.beta</c> = 0, so every token weighs 1 and the
    /// term is plain language modelling on the data (trlX's name; not the decoding <see cref="DecodeBeta"/>).
    /// </summary>
    [Range(0.0, double.MaxValue)]
    public double AwacBeta { get; init; } = 0.0;
    /// <summary>Polyak rate of the target Q heads, θ' ← α·θ + (1 − α)·θ': trlX <c>alpha</c> = 0.001.</summary>
    [Range(0.0, 1.0)]
    public double Alpha { get; init; } = 0.001;
    /// <summary>
    /// Optimizer steps between target syncs: trlX <c>steps_for_target_q_sync</c> = 5. We sync every this many steps,
    /// as the field documents; trlX@3340c2f's <c>learn</c> calls its <c>post_backward_callback</c> once per pass over
    /// the data and syncs only when the step count then divides by it.
    /// </summary>
    [Range(1, int.MaxValue)]
    public int StepsForTargetQSync { get; init; } = 5;
    /// <summary>Two Q heads and the minimum of their targets (clipped double Q): trlX <c>two_qs</c> = True.</summary>
    public bool TwoQs { get; init; } = true;
    /// <summary>
    /// β of decoding, log π + β·(Q − V), saved with the heads for <c>rlhf generate</c>/<c>serve</c> and the pipeline's
    /// evaluation: trlX <c>gen_kwargs.beta</c> = 1 (its <c>top_k</c> = 20 is a sampling option, not part of the policy).
    /// </summary>
    [Range(0.0, double.MaxValue)]
    public double DecodeBeta { get; init; } = 1.0;
    /// <summary>
    /// trlX's optimizer: AdamW, lr 5e-5, betas (0.9, 0.95), eps 1e-8, weight decay 1e-6; its cosine annealing with
    /// T_max = 1e12 and eta_min = lr is a constant rate. trlX's <c>learn</c> does not clip gradients.
    /// </summary>
    public OptimizerConfig Optimizer { get; init; } = new()
    {
        LearningRate = 5e-5, Beta1 = 0.9, Beta2 = 0.95, Eps = 1e-8, WeightDecay = 1e-6, Schedule = ScheduleKind.Constant, WarmupRatio = 0,
        MaxGradNorm = 0,
    };

    /// <inheritdoc/>
    public override void Validate(string section)
    {
        base.Validate(section);
        RefuseLogprobChunks(section, "ILQL reads the LM head only at the action positions, beside its Q and V heads");
        if (MaxPromptLength >= MaxLength)
            throw new RlhfException($"{section}.max_prompt_length ({MaxPromptLength}) must be below {section}.max_length ({MaxLength}): the completion needs room.");
    }
}
