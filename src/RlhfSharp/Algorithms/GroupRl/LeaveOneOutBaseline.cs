using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.GroupRl;

/// <summary>
/// REINFORCE Leave-One-Out (Kool et al. 2019, "Buy 4 REINFORCE samples, get a baseline for free!"; Ahmadian et al.
/// 2024, arXiv:2402.14740, Eq. 5): each completion's baseline is the mean reward of the other G−1 completions of its
/// prompt. As OpenRLHF/OpenRLHF@3c3be62 <c>openrlhf/trainer/ppo_utils/experience_maker.py</c> (estimator <c>'rloo'</c>)
/// and huggingface/trl@f2cd577 <c>trl/trainer/rloo_trainer.py</c> compute it.
/// </summary>
public static class LeaveOneOutBaseline
{
    /// <summary>
    /// <c>baseline_i = (Σ_{j∈group} r_j − r_i) / (G − 1)</c>, <c>A_i = r_i − baseline_i</c>. With
    /// <paramref name="normalizeAdvantages"/> the advantages are then whitened over the batch as TRL's
    /// <c>normalize_advantages</c> does: <c>(A − mean(A)) / (std(A) + 1e-4)</c>, std unbiased.
    /// </summary>
    /// <param name="rewards">[P·G] sequence rewards, consecutive groups of <paramref name="groupSize"/>.</param>
    /// <param name="groupSize">G (at least 2).</param>
    /// <param name="normalizeAdvantages">Whiten the advantages over the batch (TRL option, off by default).</param>
    public static (Tensor Baselines, Tensor Advantages) Compute(Tensor rewards, int groupSize, bool normalizeAdvantages = false)
    {
        if (groupSize < 2) throw new ArgumentOutOfRangeException(nameof(groupSize), "RLOO needs at least 2 samples per prompt.");
        if (rewards.dim() != 1 || rewards.shape[0] % groupSize != 0)
            throw new ArgumentException($"rewards must be 1-D with a length divisible by {groupSize}.", nameof(rewards));
        var grouped = rewards.view(-1, groupSize);                          // (P, G)
        var baselines = ((grouped.sum(1, keepdim: true) - grouped) / (groupSize - 1)).view(-1);
        var advantages = rewards - baselines;
        if (normalizeAdvantages) advantages = (advantages - advantages.mean()) / (advantages.std(unbiased: true) + 1e-4);
        return (baselines, advantages);
    }
}
