using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// The per-token PPO reward of InstructGPT (Ouyang et al. 2022, Eq. 2): a KL penalty at every token plus the
/// reward-model score at the last response token, as OpenRLHF/OpenRLHF@3c3be62 <c>openrlhf/models/utils.py</c>
/// (<c>compute_reward</c>) builds it.
/// </summary>
public static class KlShapedReward
{
    /// <summary>
    /// <c>r_t = −klCoef·kl_t + [t = last valid index]·score</c>. Padding positions keep <c>−klCoef·kl_t</c>, exactly
    /// as <c>compute_reward</c> does (GAE masks them later). A non-positive <paramref name="klCoef"/> counts as 0.
    /// </summary>
    /// <param name="score">Sequence-level reward, [B].</param>
    /// <param name="kl">Per-token KL estimate, [B, T].</param>
    /// <param name="actionMask">1.0 for response tokens, [B, T].</param>
    /// <param name="klCoef">β of the KL penalty.</param>
    /// <param name="rewardClipRange">If given, the score is clamped to it first (OpenRLHF <c>reward_clip_range</c>).</param>
    public static Tensor Compute(Tensor score, Tensor kl, Tensor actionMask, double klCoef, (double Min, double Max)? rewardClipRange = null)
    {
        if (klCoef <= 0.0) klCoef = 0.0;
        if (rewardClipRange is { } range) score = score.clamp(range.Min, range.Max);
        var lastIndex = LastValidIndex(actionMask).unsqueeze(1);
        var lastReward = torch.zeros_like(kl).scatter(1, lastIndex, score.unsqueeze(1).to_type(kl.dtype));
        return lastReward - klCoef * kl;
    }

    /// <summary>
    /// Index of the last position with mask &gt; 0.5 in each row, [B] int64. A row with no valid token gives 0
    /// (OpenRLHF's <c>fliplr().argmax</c> gives T−1 there; both are masked out by GAE).
    /// </summary>
    public static Tensor LastValidIndex(Tensor actionMask)
    {
        var positions = torch.arange(actionMask.shape[1], dtype: ScalarType.Int64, device: actionMask.device);
        return (actionMask.gt(0.5).to_type(ScalarType.Int64) * positions).amax(1);
    }
}
