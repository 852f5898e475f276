using RlhfSharp.Algorithms.Common;
using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.A2c;

/// <summary>
/// A2C's losses as RL4LMs computes them (allenai/RL4LMs@97df0bd <c>rl4lms/algorithms/a2c/a2c.py</c> <c>A2C.train</c>,
/// stable-baselines3's A2C loss unchanged): each response token is one
/// transition, so SB3's mean over the buffer is a token mean over the response mask.
/// </summary>
public static class A2cLoss
{
    /// <summary>
    /// <c>l_t = −A_t·log π(a_t|s_t)</c>, reduced over the mask (SB3: <c>policy_loss = -(advantages * log_prob).mean()</c>).
    /// The ratio, clip fraction (always 0) and approximate KL to the rollout policy are diagnostics only.
    /// </summary>
    public static PolicyLossOutput Policy(Tensor logprobs, Tensor oldLogprobs, Tensor advantages, Tensor actionMask,
        LossReduction reduction = LossReduction.TokenMean)
    {
        var perToken = -(advantages * logprobs);
        var loss = MaskedStats.Reduce(perToken, actionMask, reduction);
        using var _ = torch.no_grad();
        var logRatio = (logprobs - oldLogprobs).detach();
        var ratio = logRatio.clamp(-20.0, 20.0).exp();
        var approxKl = MaskedStats.MaskedMean(-logRatio, actionMask);
        return new PolicyLossOutput(loss, perToken, torch.zeros(Array.Empty<long>(), logprobs.dtype, logprobs.device), ratio, approxKl);
    }

    /// <summary>
    /// <c>l_t = (R_t − V_t)²</c>, reduced over the mask, without PPO's ½ or clip (SB3: <c>F.mse_loss(returns, values)</c>).
    /// </summary>
    public static ValueLossOutput Value(Tensor values, Tensor returns, Tensor actionMask, LossReduction reduction = LossReduction.TokenMean)
    {
        var perToken = (returns - values).square();
        return new ValueLossOutput(MaskedStats.Reduce(perToken, actionMask, reduction), perToken,
            torch.zeros(Array.Empty<long>(), values.dtype, values.device));
    }
}
