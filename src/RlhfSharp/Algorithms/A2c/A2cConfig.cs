using System.ComponentModel.DataAnnotations;
using RlhfSharp.Algorithms.Ppo;

namespace RlhfSharp.Algorithms.A2c;

/// <summary>
/// Advantage actor-critic (Mnih et al. 2016, arXiv:1602.01783, the synchronous A2C) on PPO's rollouts, critic and
/// KL-shaped reward: the <c>ppo</c> section's sampling, reward, KL controller, GAE γ, critic and optimizers, with A2C's
/// update: one gradient step on the whole rollout batch, the plain policy gradient <c>−A·log π</c> (no ratio, no clip)
/// and an unclipped squared value error. The fields are where A2C's defaults differ from PPO's, as RL4LMs' A2C sets them
/// (allenai/RL4LMs@97df0bd <c>rl4lms/algorithms/a2c/a2c.py</c>, stable-baselines3's A2C with its defaults;
/// <c>scripts/training/task_configs/imdb_text_continuation/gpt2_a2c.yml</c> overrides none of them).
/// </summary>
/// <remarks>
/// Not taken from SB3: its RMSprop (α 0.99, ε 1e-5) and learning rate 7e-4; the actor and critic keep the <c>ppo</c>
/// section's AdamW and learning rates, as RL4LMs' IMDB configs give A2C and PPO the same learning rate (1e-6).
/// SB3's <c>ent_coef</c> is 0, as PPO's here, so no entropy term is added.
/// </remarks>
public sealed record A2cConfig
{
    /// <summary>GAE λ (RL4LMs/SB3 A2C <c>gae_lambda</c> = 1.0: the Monte-Carlo return minus the critic's value, A2C's classic advantage).</summary>
    [Range(0.0, 1.0)]
    public double Lambda { get; init; } = 1.0;
    /// <summary>Whiten advantages over the batch (RL4LMs/SB3 A2C <c>normalize_advantage</c> = False).</summary>
    public bool NormalizeAdvantage { get; init; }
    /// <summary>Weight of the value loss when the critic is a value head on the actor (RL4LMs/SB3 A2C <c>vf_coef</c> = 0.5).</summary>
    [Range(0.0, double.MaxValue)]
    public double ValueCoef { get; init; } = 0.5;

    /// <summary>
    /// The PPO settings A2C runs with: one epoch over one minibatch holding the whole rollout batch (RL4LMs A2C
    /// <c>train</c>: <c>rollout_buffer.get(batch_size=None)</c>, one optimizer step), no KL early stop, no value clip.
    /// </summary>
    public PpoConfig Apply(PpoConfig ppo) => ppo with
    {
        PpoEpochs = 1, MiniBatchSize = ppo.RolloutBatchSize, EarlyStopKl = null, ValueClip = null,
        Lambda = Lambda, WhitenAdvantages = NormalizeAdvantage, ValueCoef = ValueCoef,
    };
}
