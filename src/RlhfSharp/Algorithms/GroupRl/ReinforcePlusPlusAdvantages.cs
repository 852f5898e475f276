using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.GroupRl;

/// <summary>
/// REINFORCE++ (Hu 2025, arXiv:2501.03262): critic-free token-level returns of the KL-shaped reward, whitened over the
/// whole global batch, as OpenRLHF/OpenRLHF@3c3be62 <c>openrlhf/trainer/ppo_utils/experience_maker.py</c> computes them
/// (estimator <c>'reinforce'</c>: <c>get_cumulative_returns</c>, then the "Normalize advantages across all experiences" block).
/// </summary>
public static class ReinforcePlusPlusAdvantages
{
    /// <summary>
    /// Discounted returns <c>G_t = r'_t + γ·G_{t+1}</c> with <c>r' = r·m</c>, over the full padded width (OpenRLHF
    /// <c>get_cumulative_returns</c>). Without grad, in the dtype and on the device of <paramref name="rewards"/>.
    /// </summary>
    /// <param name="rewards">Per-token rewards, [B, T] (typically <see cref="KlShapedReward.Compute"/>).</param>
    /// <param name="actionMask">1.0 for response tokens, [B, T].</param>
    /// <param name="gamma">Discount (OpenRLHF default 1.0).</param>
    public static Tensor CumulativeReturns(Tensor rewards, Tensor actionMask, double gamma = 1.0)
    {
        long b = rewards.shape[0], t = rewards.shape[1];
        using var _ = torch.no_grad();
        // Sequential in t: one host pass, one copy back (see GaeEstimator).
        double[] r;
        using (torch.NewDisposeScope()) r = GaeEstimator.ToDoubles(rewards * actionMask);
        var returns = new double[b * t];
        for (long i = 0; i < b; i++)
        {
            double running = 0;
            for (long j = t - 1; j >= 0; j--) returns[i * t + j] = running = r[i * t + j] + gamma * running;
        }
        return GaeEstimator.FromDoubles(returns, rewards);
    }

    /// <summary>
    /// Global whitening: <c>(x − μ)·rsqrt(max(σ², 1e-8))</c> with <c>μ = Σ x·m / Σ m</c> and the <b>biased</b>
    /// <c>σ² = Σ (x − μ)²·m / Σ m</c> over every valid token of the batch. Padding positions are transformed too
    /// (to <c>−μ/σ</c>), as in OpenRLHF; the losses mask them. <paramref name="divideByStd"/> false only centres
    /// (OpenRLHF <c>no_std_norm</c>).
    /// </summary>
    public static Tensor GlobalWhiten(Tensor values, Tensor actionMask, bool divideByStd = true)
    {
        // Under mpirun the batch is every rank's rows.
        if (RlhfSharp.Distributed.DataParallel.World is not null) return RlhfSharp.Distributed.AcrossRanks.GlobalWhiten(values, actionMask, divideByStd);
        var numActions = actionMask.sum();
        var mean = (values * actionMask).sum() / numActions;
        if (!divideByStd) return values - mean;
        var variance = ((values - mean).square() * actionMask).sum() / numActions;
        return (values - mean) * variance.clamp_min(1e-8).rsqrt();
    }

    /// <summary>REINFORCE++ advantages (<see cref="GlobalWhiten"/> of the returns) and the returns themselves, [B, T].</summary>
    public static (Tensor Advantages, Tensor Returns) Compute(Tensor rewards, Tensor actionMask, double gamma = 1.0)
    {
        var returns = CumulativeReturns(rewards, actionMask, gamma);
        return (GlobalWhiten(returns, actionMask), returns);
    }
}
