using RlhfSharp.Algorithms.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>Which per-token estimate of KL(π‖π_ref) to use (Schulman, "Approximating KL Divergence", 2020).</summary>
public enum KlEstimatorKind
{
    /// <summary><c>log r</c>: unbiased, can be negative.</summary>
    K1,
    /// <summary><c>½ (log r)²</c>: biased, non-negative, low variance.</summary>
    K2,
    /// <summary><c>(r⁻¹ − 1) + log r</c>: unbiased and non-negative.</summary>
    K3,
}

/// <summary>
/// Per-token KL estimators with <c>log r = logprobs − refLogprobs</c>, as in OpenRLHF/OpenRLHF@3c3be62
/// <c>openrlhf/models/utils.py</c> (<c>compute_approx_kl</c>) after Schulman's blog post
/// (http://joschu.net/blog/kl-approx.html). TRL's k3 in huggingface/trl@f2cd577
/// <c>trl/experimental/ppo/ppo_trainer.py</c> is the same with the log-ratio written the other way round.
/// </summary>
public static class KlEstimator
{
    /// <summary>k1 = <c>logprobs − refLogprobs</c> at every position.</summary>
    public static Tensor K1(Tensor logprobs, Tensor refLogprobs) => logprobs - refLogprobs;

    /// <summary>k2 = <c>½ (logprobs − refLogprobs)²</c> at every position.</summary>
    public static Tensor K2(Tensor logprobs, Tensor refLogprobs) => 0.5 * (logprobs - refLogprobs).square();

    /// <summary>k3 = <c>exp(−log r) − 1 + log r</c> at every position.</summary>
    public static Tensor K3(Tensor logprobs, Tensor refLogprobs)
    {
        var logRatio = logprobs - refLogprobs;
        return (-logRatio).exp() - 1.0 + logRatio;
    }

    /// <summary>
    /// The chosen estimator at every position (padding included), clamped to <c>[−clampAbs, clampAbs]</c> as OpenRLHF
    /// does (10 there); pass null for no clamp.
    /// </summary>
    public static Tensor PerToken(Tensor logprobs, Tensor refLogprobs, KlEstimatorKind kind, double? clampAbs = 10.0)
    {
        var kl = kind switch
        {
            KlEstimatorKind.K1 => K1(logprobs, refLogprobs),
            KlEstimatorKind.K2 => K2(logprobs, refLogprobs),
            KlEstimatorKind.K3 => K3(logprobs, refLogprobs),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return clampAbs is double c ? kl.clamp(-c, c) : kl;
    }

    /// <summary><c>sum(k·m) / sum(m)</c>: the estimator averaged over every valid token of the batch (0-d).</summary>
    public static Tensor TokenMean(Tensor logprobs, Tensor refLogprobs, Tensor actionMask, KlEstimatorKind kind, double? clampAbs = 10.0)
        => MaskedStats.MaskedMean(PerToken(logprobs, refLogprobs, kind, clampAbs), actionMask);
}
