using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// Generalized Advantage Estimation (Schulman et al. 2016, arXiv:1506.02438, Eq. 16) as OpenRLHF computes it:
/// OpenRLHF/OpenRLHF@3c3be62 <c>openrlhf/trainer/ppo_utils/experience_maker.py</c> (<c>get_advantages_and_returns</c>).
/// </summary>
public static class GaeEstimator
{
    /// <summary>
    /// Advantages and returns for right-padded responses. With <c>r' = r·m</c> and <c>v' = v·m</c> (the mask is applied
    /// first, so padding contributes nothing), <c>δ_t = r'_t + γ·v'_{t+1} − v'_t</c> (<c>v'_T = 0</c>),
    /// <c>A_t = δ_t + γλ·A_{t+1}</c> (<c>A_T = 0</c>) over the full padded width, and <c>returns = A + v'</c>.
    /// </summary>
    /// <param name="values">Value estimates, [B, T].</param>
    /// <param name="rewards">Per-token rewards (typically <see cref="KlShapedReward.Compute"/>), [B, T].</param>
    /// <param name="actionMask">1.0 for response tokens, 0.0 for padding, [B, T].</param>
    /// <param name="gamma">Discount γ.</param>
    /// <param name="lambda">GAE λ.</param>
    /// <returns>Advantages and returns, [B, T], in the dtype and on the device of <paramref name="values"/>, without grad.</returns>
    public static (Tensor Advantages, Tensor Returns) Compute(Tensor values, Tensor rewards, Tensor actionMask, double gamma, double lambda)
    {
        if (values.dim() != 2 || !values.shape.SequenceEqual(rewards.shape) || !values.shape.SequenceEqual(actionMask.shape))
            throw new ArgumentException("values, rewards and actionMask must all be [B, T].");
        long b = values.shape[0], t = values.shape[1];
        using var _ = torch.no_grad();

        // The recursion is sequential in t: run it on one host copy (per-op overhead would dominate a tensor loop)
        // and copy back once. Double accumulation keeps float32 inputs as accurate as they can be.
        double[] v, r;
        using (torch.NewDisposeScope()) { v = ToDoubles(values * actionMask); r = ToDoubles(rewards * actionMask); }
        var advantages = new double[b * t];
        double gl = gamma * lambda;
        for (long i = 0; i < b; i++)
        {
            long row = i * t;
            double lastGaeLam = 0, nextValue = 0;
            for (long j = t - 1; j >= 0; j--)
            {
                double delta = r[row + j] + gamma * nextValue - v[row + j];
                lastGaeLam = delta + gl * lastGaeLam;
                advantages[row + j] = lastGaeLam;
                nextValue = v[row + j];
            }
        }
        var returns = new double[b * t];
        for (long k = 0; k < b * t; k++) returns[k] = advantages[k] + v[k];
        return (FromDoubles(advantages, values), FromDoubles(returns, values));
    }

    internal static double[] ToDoubles(Tensor x)
        => x.detach().to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();

    internal static Tensor FromDoubles(double[] data, Tensor like)
    {
        using var scope = torch.NewDisposeScope();
        return torch.tensor(data, like.shape, ScalarType.Float64).to(like.dtype, like.device).MoveToOuterDisposeScope();
    }
}
