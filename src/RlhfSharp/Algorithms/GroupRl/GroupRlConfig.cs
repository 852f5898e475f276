using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using RlhfSharp.Training;

namespace RlhfSharp.Algorithms.GroupRl;

/// <summary>Which critic-free baseline turns sequence rewards into advantages (<see cref="CriticFreeAdvantages"/>).</summary>
public enum AdvantageEstimator
{
    /// <summary>Group-relative: <c>(r − mean_group) / std_group</c> (Shao et al. 2024, DeepSeekMath §4.1.2).</summary>
    Grpo,
    /// <summary>Leave-one-out baseline of the other G−1 completions (Ahmadian et al. 2024, Eq. 5).</summary>
    Rloo,
    /// <summary>Token returns of the KL-shaped reward, whitened over the batch (Hu 2025, REINFORCE++).</summary>
    ReinforcePp,
    /// <summary>REINFORCE++ with the group mean subtracted from the score first (OpenRLHF <c>reinforce_baseline</c>).</summary>
    ReinforcePpBaseline,
    /// <summary>The reward of the greedy completion of the same prompt as baseline (Li et al. 2023, ReMax Eq. 7).</summary>
    Remax,
}

/// <summary>
/// Online critic-free RL: sample G completions per prompt, score them, turn the scores into advantages with a baseline
/// that needs no value model, and take PPO-clipped policy steps. Defaults are TRL's <c>GRPOConfig</c>
/// (huggingface/trl@f2cd577 <c>trl/trainer/grpo_config.py</c>) unless the comment says otherwise.
/// </summary>
public sealed record GroupRlConfig : StageConfig
{
    /// <summary>Checkpoints every 10 steps (online steps are long).</summary>
    public GroupRlConfig() { SaveEvery = 10; }

    /// <summary>
    /// True, and only true (a deviation: TRL's <c>GRPOConfig.disable_dropout</c> = False). TRL's GRPO with one iteration
    /// reuses the detached new log-probs as the old ones, so its ratio is 1 even with dropout on; here the old log-probs come
    /// from the policy in eval mode (<see cref="GroupRlTrainer"/>), which with dropout in the train-mode forward would make
    /// the ratio wrong from the first update.
    /// </summary>
    public override bool DisableDropout { get; init; } = true;

    public AdvantageEstimator Estimator { get; init; } = AdvantageEstimator.Grpo;
    /// <summary>Rollout batches (one optimizer pass over each) of the whole run.</summary>
    [Range(1, int.MaxValue)]
    public int Steps { get; init; } = 100;
    /// <summary>Distinct prompts per rollout batch; the batch holds <c>PromptsPerStep · GroupSize</c> completions.</summary>
    [Range(1, int.MaxValue)]
    public int PromptsPerStep { get; init; } = 8;
    /// <summary>G, completions per prompt (TRL <c>num_generations</c> = 8; DeepSeekMath used 64). ReMax and REINFORCE++ accept 1.</summary>
    [Range(1, int.MaxValue)]
    public int GroupSize { get; init; } = 8;
    /// <summary>Longest completion (TRL <c>max_completion_length</c> = 256); also Dr. GRPO's constant normaliser.</summary>
    [Range(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 256;
    /// <summary>Sampling temperature (TRL <c>temperature</c> = 1.0): GRPO needs diverse groups.</summary>
    [Range(0.0, double.MaxValue)]
    public double Temperature { get; init; } = 1.0;
    [Range(0.0, 1.0, MinimumIsExclusive = true)]
    public double TopP { get; init; } = 1.0;

    /// <summary>How GRPO divides the centred rewards (TRL <c>scale_rewards</c> = "group"); ignored by the other estimators.</summary>
    public RewardScaling RewardScaling { get; init; } = RewardScaling.Group;
    /// <summary>How per-token losses become the step's loss (TRL <c>loss_type</c>; token_mean is DAPO's and TRL's "dapo").</summary>
    public LossAggregation LossAggregation { get; init; } = LossAggregation.TokenMean;
    /// <summary>Lower clip ε (TRL <c>epsilon</c> = 0.2; Schulman et al. 2017).</summary>
    [Range(0.0, double.MaxValue)]
    public double ClipEpsLow { get; init; } = 0.2;
    /// <summary>Upper clip ε (TRL <c>epsilon_high</c> defaults to <c>epsilon</c>; DAPO "clip-higher" uses 0.28).</summary>
    [Range(0.0, double.MaxValue)]
    public double ClipEpsHigh { get; init; } = 0.2;
    /// <summary>
    /// Weight of the k3 KL loss to the frozen reference (TRL <c>beta</c> = 0.0 since v0.19, after Dr. GRPO and DAPO
    /// dropped it; DeepSeekMath used 0.04). 0 skips the reference forward pass for the loss.
    /// </summary>
    [Range(0.0, double.MaxValue)]
    public double Beta { get; init; } = 0.0;
    /// <summary>
    /// β of the k1 KL folded into the sequence reward before the baseline, for every estimator except GRPO (which
    /// puts KL in the loss instead): TRL <c>RLOOConfig</c> <c>kl_coef</c> = 0.05 (trl/trainer/rloo_config.py);
    /// OpenRLHF's REINFORCE++ uses <c>init_kl_coef</c> 0.01 per token.
    /// </summary>
    [Range(0.0, double.MaxValue)]
    public double RewardKlCoef { get; init; } = 0.05;
    /// <summary>Scores are clipped to ±this before use (OpenRLHF <c>reward_clip_range</c> = (−10, 10)).</summary>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double RewardClip { get; init; } = 10.0;

    /// <summary>Completions per forward/backward (TRL <c>per_device_train_batch_size</c> = 8).</summary>
    [Range(1, int.MaxValue)]
    public int MiniBatchSize { get; init; } = 8;
    /// <summary>PPO epochs over each rollout batch (TRL <c>num_iterations</c> = 1: then the ratio is 1 and clipping is idle).</summary>
    [Range(1, int.MaxValue)]
    public int Epochs { get; init; } = 1;
    /// <summary>
    /// Policy optimizer (TRL <c>learning_rate</c> = 1e-6). Its <c>GradientAccumulation</c> micro-batches of
    /// <see cref="MiniBatchSize"/> make one optimizer step; the loss is normalised over all of them.
    /// </summary>
    public OptimizerConfig Optimizer { get; init; } = new() { LearningRate = 1e-6, Schedule = ScheduleKind.Constant, WarmupRatio = 0 };
    /// <summary>
    /// The element type the frozen reference model is held in: float32 (transformers' default) or bf16/f16, half the
    /// memory (its log-probs are still computed in float32). Issue #20's dtype key for frozen roles.
    /// </summary>
    public string ReferenceDtype { get; init; } = "float32";

    /// <inheritdoc/>
    public override void Validate(string section)
    {
        base.Validate(section);
        RequireDropoutOff(StageName);
        ValidateReferenceDtype(StageName, ReferenceDtype);
        if (GroupSize < 2 && Estimator is AdvantageEstimator.Grpo or AdvantageEstimator.Rloo or AdvantageEstimator.ReinforcePpBaseline)
            throw new RlhfException($"{StageName}: group_size must be at least 2 (its baseline comes from the other completions of the prompt).");
        if (MiniBatchSize < 1 || Optimizer.GradientAccumulation < 1 || Epochs < 1)
            throw new RlhfException($"{StageName}: mini_batch_size, gradient_accumulation and epochs must be at least 1.");
    }

    /// <summary>The run-folder stage name of the estimator (<c>grpo</c>, <c>rloo</c>, <c>reinforce_pp</c>, <c>reinforce_pp_baseline</c>, <c>remax</c>).</summary>
    [JsonIgnore]
    public string StageName => Estimator switch
    {
        AdvantageEstimator.Grpo => "grpo",
        AdvantageEstimator.Rloo => "rloo",
        AdvantageEstimator.ReinforcePp => "reinforce_pp",
        AdvantageEstimator.ReinforcePpBaseline => "reinforce_pp_baseline",
        AdvantageEstimator.Remax => "remax",
        _ => throw new ArgumentOutOfRangeException(nameof(Estimator)),
    };
}
