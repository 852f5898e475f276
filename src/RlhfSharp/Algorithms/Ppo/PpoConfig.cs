using System.ComponentModel.DataAnnotations;
using RlhfSharp.Algorithms.Common;
using RlhfSharp.Training;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>How the critic is built.</summary>
public enum CriticKind
{
    /// <summary>A separate model initialised from the reward model (InstructGPT §3.5; OpenRLHF, DeepSpeed-Chat).</summary>
    SeparateFromRewardModel,
    /// <summary>A linear value head on the policy's last hidden state (TRL's AutoModelForCausalLMWithValueHead).</summary>
    ValueHead,
}

/// <summary>
/// PPO for language models with a per-token KL penalty to the SFT model. Defaults are OpenRLHF's train_ppo
/// (v0.5) unless the comment says otherwise.
/// </summary>
public sealed record PpoConfig : StageConfig
{
    /// <summary>Checkpoints every 10 steps (online steps are long).</summary>
    public PpoConfig() { SaveEvery = 10; }

    /// <summary>
    /// True, and only true: TRL's PPOTrainer and RLOOTrainer call <c>disable_dropout_in_model</c> on every model (ppo_trainer.py,
    /// rloo_trainer.py), and here the old log-probs and values come from eval mode, the new ones from train mode.
    /// </summary>
    public override bool DisableDropout { get; init; } = true;

    /// <summary>Optimizer steps of the whole run (OpenRLHF counts episodes; one step = one rollout batch here).</summary>
    [Range(1, int.MaxValue)]
    public int Steps { get; init; } = 100;
    /// <summary>Prompts sampled per rollout batch (OpenRLHF rollout_batch_size = 512; lower for CPU).</summary>
    [Range(1, int.MaxValue)]
    public int RolloutBatchSize { get; init; } = 512;
    /// <summary>Rollouts per gradient step (OpenRLHF train_batch_size = 128).</summary>
    [Range(1, int.MaxValue)]
    public int MiniBatchSize { get; init; } = 128;
    /// <summary>Passes over each rollout batch (OpenRLHF max_epochs = 1; InstructGPT/Ziegler used 4 with smaller batches).</summary>
    [Range(1, int.MaxValue)]
    public int PpoEpochs { get; init; } = 1;
    [Range(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 1024;
    [Range(0.0, double.MaxValue)]
    public double Temperature { get; init; } = 1.0;
    [Range(0.0, 1.0, MinimumIsExclusive = true)]
    public double TopP { get; init; } = 1.0;

    /// <summary>Initial β of the KL penalty (OpenRLHF init_kl_coef = 0.01; InstructGPT β = 0.02).</summary>
    [Range(0.0, double.MaxValue)]
    public double InitKlCoef { get; init; } = 0.01;
    /// <summary>
    /// Adaptive KL target in OpenRLHF's unit: each response's KL averaged over its tokens, then over the batch (OpenRLHF
    /// <c>kl_target</c>, default None, fed <c>status["kl"]</c>, a per-token mean; logged here as <c>kl_per_token</c>).
    /// Null, and <see cref="KlTargetPerSequence"/> null: a fixed β. At most one of the two may be set.
    /// </summary>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double? KlTargetPerToken { get; init; }
    /// <summary>
    /// Adaptive KL target in Ziegler et al. (2019)'s unit, also TRL's PPOv1 <c>target</c> (6): each response's KL summed
    /// over its tokens, averaged over the batch (logged as <c>kl</c>). At most one of this and <see cref="KlTargetPerToken"/>.
    /// </summary>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double? KlTargetPerSequence { get; init; }
    /// <summary>Horizon of the adaptive controller in samples (OpenRLHF kl_horizon = 10000; Ziegler et al.).</summary>
    [Range(1, int.MaxValue)]
    public int KlHorizon { get; init; } = 10000;
    /// <summary>KL estimator in the reward (k1 as OpenRLHF's default; Schulman's k2/k3 are available).</summary>
    public KlEstimatorKind KlEstimator { get; init; } = KlEstimatorKind.K1;
    /// <summary>Scores are clipped to this range before the KL penalty (OpenRLHF reward_clip_range = (−10, 10)).</summary>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double RewardClip { get; init; } = 10.0;

    /// <summary>GAE discount (OpenRLHF gamma = 1).</summary>
    [Range(0.0, 1.0)]
    public double Gamma { get; init; } = 1.0;
    /// <summary>GAE λ (OpenRLHF lambd = 0.95).</summary>
    [Range(0.0, 1.0)]
    public double Lambda { get; init; } = 0.95;
    /// <summary>Whiten advantages over the batch (OpenRLHF advantages_norm; TRL whiten_rewards for advantages).</summary>
    public bool WhitenAdvantages { get; init; } = true;
    /// <summary>PPO clip ε (Schulman et al. 2017; OpenRLHF eps_clip = 0.2).</summary>
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double ClipEps { get; init; } = 0.2;
    /// <summary>Value clip (OpenRLHF value_clip = 0.2); null disables.</summary>
    public double? ValueClip { get; init; } = 0.2;
    /// <summary>Weight of the value loss when the critic shares the policy's body (TRL vf_coef = 0.1).</summary>
    [Range(0.0, double.MaxValue)]
    public double ValueCoef { get; init; } = 0.1;
    public LossReduction Reduction { get; init; } = LossReduction.TokenMean;
    /// <summary>Stop the epochs of a batch early when approx KL exceeds this (OpenAI baselines' target_kl); null = never.</summary>
    public double? EarlyStopKl { get; init; }

    /// <summary>PPO-ptx: γ of the pre-training LM loss mixed into the actor loss (OpenRLHF ptx_coef = 0.05; InstructGPT γ = 27.8 on its own scale).</summary>
    [Range(0.0, double.MaxValue)]
    public double PtxCoef { get; init; } = 0.05;
    /// <summary>EMA of the actor's weights (OpenRLHF ema_beta = 0.992); null = off.</summary>
    [Range(0.0, 1.0)]
    public double? EmaBeta { get; init; }

    public CriticKind Critic { get; init; } = CriticKind.SeparateFromRewardModel;
    /// <summary>
    /// The element type the frozen reference model is held in: float32 (transformers' default) or bf16/f16, half the
    /// memory (its log-probs are still computed in float32). Issue #20's dtype key for frozen roles.
    /// </summary>
    public string ReferenceDtype { get; init; } = "float32";
    /// <summary>
    /// With <c>lora</c>: the actor, critic, reference and reward model hold ONE copy of the base weights (TRL's Multi Adapter
    /// RL; <see cref="Lora.SharedBase"/>): the reference is the actor with its adapters off, the reward model (a LoRA reward
    /// adapter on the policy's base) and the critic (a trainable copy of that adapter and head) sit on the actor's base
    /// tensors. Off by default: the critic then starts from the merged reward model with a new adapter (OpenRLHF).
    /// </summary>
    public bool SharedBase { get; init; }
    /// <summary>Actor learning rate (OpenRLHF actor_learning_rate = 1e-6).</summary>
    public OptimizerConfig ActorOptimizer { get; init; } = new() { LearningRate = 1e-6, Schedule = ScheduleKind.Cosine };
    /// <summary>Critic learning rate (OpenRLHF critic_learning_rate = 9e-6).</summary>
    public OptimizerConfig CriticOptimizer { get; init; } = new() { LearningRate = 9e-6, Schedule = ScheduleKind.Cosine };

    /// <inheritdoc/>
    public override void Validate(string section)
    {
        base.Validate(section);
        RequireDropoutOff(section);
        ValidateReferenceDtype(section, ReferenceDtype);
        // OpenRLHF splits each rollout batch into train_batch_size minibatches; a minibatch larger than the batch would
        // silently become the whole batch, so the step count and the learning-rate schedule would not be what was asked.
        if (MiniBatchSize > RolloutBatchSize)
            throw new RlhfException($"{section}.mini_batch_size ({MiniBatchSize}) must not exceed {section}.rollout_batch_size ({RolloutBatchSize}): a minibatch is a slice of a rollout batch.");
        if (SharedBase && Lora is null)
            throw new RlhfException($"{section}.shared_base needs {section}.lora: only frozen base weights can be shared, and without adapters the actor trains its base.");
        if (KlTargetPerToken is not null && KlTargetPerSequence is not null)
            throw new RlhfException($"{section}: set kl_target_per_token (OpenRLHF's unit) or kl_target_per_sequence (Ziegler et al.'s and TRL's), not both.");
    }
}
