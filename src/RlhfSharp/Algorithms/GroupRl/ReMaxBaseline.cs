using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.GroupRl;

/// <summary>
/// ReMax (Li et al. 2023, arXiv:2310.10505, Algorithm 1 / Eq. 7): REINFORCE whose baseline is the reward of the
/// greedy completion of the same prompt, so no value model is needed.
/// </summary>
public static class ReMaxBaseline
{
    /// <summary><c>A = r(x, y_sampled) − r(x, y_greedy)</c>, one per sequence, [B].</summary>
    public static Tensor Advantages(Tensor sampledRewards, Tensor greedyRewards) => sampledRewards - greedyRewards;

    /// <summary>The sequence advantage broadcast to every response token and zero on padding, [B, T].</summary>
    public static Tensor PerToken(Tensor sampledRewards, Tensor greedyRewards, Tensor actionMask)
        => Advantages(sampledRewards, greedyRewards).unsqueeze(1) * actionMask;
}
