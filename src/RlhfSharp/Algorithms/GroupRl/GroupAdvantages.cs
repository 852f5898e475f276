using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.GroupRl;

/// <summary>How GRPO divides the group-centred rewards (TRL <c>GRPOConfig.scale_rewards</c>).</summary>
public enum RewardScaling
{
    /// <summary>By the unbiased std of the group (Shao et al. 2024, DeepSeekMath §4.1.2; TRL default).</summary>
    Group,
    /// <summary>By the unbiased std of the whole batch (Liu et al. 2025, "Understanding R1-Zero-like training" discusses the bias of per-group scaling).</summary>
    Batch,
    /// <summary>Not at all: Dr. GRPO (Liu et al. 2025, arXiv:2503.20783).</summary>
    None,
}

/// <summary>What <see cref="GroupAdvantages.Compute"/> returns.</summary>
/// <param name="Advantages">One advantage per completion, [P·G].</param>
/// <param name="GroupMean">Mean reward of each group, [P].</param>
/// <param name="GroupStd">Unbiased std of each group, [P] (whatever the scaling).</param>
public sealed record GroupAdvantagesOutput(Tensor Advantages, Tensor GroupMean, Tensor GroupStd);

/// <summary>
/// GRPO's outcome-supervised advantages: <c>A_i = (r_i − mean_group(r)) / (std_group(r) + 1e-4)</c> with Bessel's
/// correction (Shao et al. 2024, arXiv:2402.03300, §4.1.2), as huggingface/trl@f2cd577 <c>trl/trainer/grpo_trainer.py</c>
/// (<c>_generate_and_score_completions</c>, <c>scale_rewards</c>; <c>nanstd</c> in <c>trl/trainer/utils.py</c>) computes it.
/// </summary>
public static class GroupAdvantages
{
    /// <summary>Advantages for rewards laid out as consecutive groups of <paramref name="groupSize"/> completions of one prompt.</summary>
    /// <param name="rewards">[P·G] rewards, group-major.</param>
    /// <param name="groupSize">G, the completions per prompt (TRL <c>num_generations</c>); at least 2.</param>
    /// <param name="scaling">Group (default), batch or no std scaling.</param>
    /// <param name="eps">Added to the std (TRL 1e-4; OpenRLHF <c>group_norm</c> uses 1e-9).</param>
    public static GroupAdvantagesOutput Compute(Tensor rewards, int groupSize, RewardScaling scaling = RewardScaling.Group, double eps = 1e-4)
    {
        if (groupSize < 2) throw new ArgumentOutOfRangeException(nameof(groupSize), "GRPO needs at least 2 completions per prompt.");
        if (rewards.dim() != 1 || rewards.shape[0] % groupSize != 0)
            throw new ArgumentException($"rewards must be 1-D with a length divisible by {groupSize}.", nameof(rewards));
        var grouped = rewards.view(-1, groupSize);                          // (P, G)
        var groupMean = grouped.mean(new long[] { 1 });
        var groupStd = grouped.std(1, unbiased: true);
        var centred = (grouped - groupMean.unsqueeze(1)).view(-1);
        var advantages = scaling switch
        {
            RewardScaling.Group => centred / (groupStd.repeat_interleave(groupSize) + eps),
            RewardScaling.Batch => centred / (rewards.std(unbiased: true) + eps),
            RewardScaling.None => centred,
            _ => throw new ArgumentOutOfRangeException(nameof(scaling)),
        };
        return new GroupAdvantagesOutput(advantages, groupMean, groupStd);
    }
}
