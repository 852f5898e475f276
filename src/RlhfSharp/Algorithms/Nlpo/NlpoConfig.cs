using System.ComponentModel.DataAnnotations;

namespace RlhfSharp.Algorithms.Nlpo;

/// <summary>
/// NLPO's masking policy (Ramamurthy et al. 2022, arXiv:2210.01241, §3.2 and Algorithm 1): PPO whose actor may only take
/// the tokens in the top-p set of a masking policy, a copy of the actor refreshed every few rollout batches. Everything
/// else (rollouts, reward, critic, KL, optimizers) is the <c>ppo</c> section's, as RL4LMs' NLPO task configs share their
/// PPO configs' <c>alg.args</c>. Defaults are RL4LMs' IMDB configuration (allenai/RL4LMs@97df0bd
/// <c>scripts/training/task_configs/imdb_text_continuation/gpt2_nlpo.yml</c>, <c>mask_type: learned_top_p</c>, the
/// only mask type implemented here), the causal-LM task of the paper nearest to the built-in one.
/// </summary>
public sealed record NlpoConfig
{
    /// <summary>
    /// The masking policy keeps the smallest set of most likely tokens whose probability reaches this (<c>top_mask</c> = 0.9
    /// in gpt2_nlpo.yml and every NLPO task config but IWSLT's 0.5).
    /// </summary>
    [Range(0.0, 1.0, MinimumIsExclusive = true)]
    public double TopMask { get; init; } = 0.9;
    /// <summary>
    /// At least this many tokens are always kept (<c>min_tokens_to_keep</c> = 100 in gpt2_nlpo.yml, also the default of
    /// RL4LMs' <c>MaskedCausalLMActorCriticPolicy</c>, <c>rl4lms/envs/text_generation/policy/causal_policy.py</c>).
    /// </summary>
    [Range(1, int.MaxValue)]
    public int MinTokensToKeep { get; init; } = 100;
    /// <summary>
    /// The masking policy becomes a copy of the actor every this many rollout batches (<c>target_update_iterations</c> = 5
    /// in gpt2_nlpo.yml; 20 in most seq2seq configs; the policy class's default is 1000).
    /// </summary>
    [Range(1, int.MaxValue)]
    public int TargetUpdateIterations { get; init; } = 5;
    /// <summary>
    /// The element type the frozen masking policy is held in (bf16: half its memory; its top-p set is taken in float32).
    /// Null: the actor's own, as RL4LMs' deep copy. Issue #12's dtype key for frozen roles, beside <c>reference_dtype</c>.
    /// </summary>
    public string? MaskDtype { get; init; }

    /// <summary>The masking policy's element type for an actor held in <paramref name="actor"/>; a bad name is an error naming <c>nlpo.mask_dtype</c>.</summary>
    public ScalarType MaskScalarType(ScalarType actor) => MaskDtype is null ? actor : Models.ModelDtype.Parse(MaskDtype, "nlpo.mask_dtype");
}
