using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Common;

/// <summary>
/// Statistics over the valid (mask = 1) entries of a tensor. Source: huggingface/trl@f2cd577
/// <c>trl/trainer/utils.py</c> / <c>trl/experimental/ppo/ppo_trainer.py</c> (<c>masked_mean</c>,
/// <c>masked_var</c>, <c>masked_whiten</c>). Masks are 1.0 for valid tokens and 0.0 for padding.
/// </summary>
public static class MaskedStats
{
    /// <summary><c>sum(values·mask) / sum(mask)</c> over every element (a 0-d tensor).</summary>
    public static Tensor MaskedMean(Tensor values, Tensor mask)
        => (values * mask).sum() / mask.sum();

    /// <summary><c>sum(values·mask, dim) / sum(mask, dim)</c>: the mean of each slice along <paramref name="dim"/>.</summary>
    public static Tensor MaskedMean(Tensor values, Tensor mask, long dim)
        => (values * mask).sum(dim) / mask.sum(dim);

    /// <summary>
    /// <c>masked_mean((values − masked_mean(values))², mask)</c>, times <c>n/(n−1)</c> with <c>n = sum(mask)</c> when
    /// <paramref name="unbiased"/> (TRL's Bessel correction). Throws if the unbiased variance needs fewer than 2 valid entries.
    /// </summary>
    public static Tensor MaskedVar(Tensor values, Tensor mask, bool unbiased = true)
    {
        var mean = MaskedMean(values, mask);
        var variance = MaskedMean((values - mean).square(), mask);
        if (!unbiased) return variance;
        var maskSum = mask.sum();
        // One host sync per call, never per token: TRL raises here too rather than return inf or NaN.
        double n = maskSum.to_type(ScalarType.Float64).item<double>();
        if (n < 2) throw new ArgumentException($"The unbiased masked variance needs at least 2 valid entries; the mask sums to {n}.", nameof(mask));
        return variance * (maskSum / (maskSum - 1));
    }

    /// <summary>
    /// <c>(values − mean) / sqrt(var + eps)</c> at every position (padding included), with the mean and the unbiased
    /// variance taken over the valid entries only; adds the mean back when <paramref name="shiftMean"/> is false.
    /// TRL's PPO trainer zeroes the padding afterwards; that is left to the caller.
    /// </summary>
    public static Tensor MaskedWhiten(Tensor values, Tensor mask, bool shiftMean = true, double eps = 1e-8)
    {
        var mean = MaskedMean(values, mask);
        var variance = MaskedVar(values, mask, unbiased: true);
        var whitened = (values - mean) * (variance + eps).rsqrt();
        return shiftMean ? whitened : whitened + mean;
    }

    /// <summary>Reduces a per-token loss [B, T] to a scalar as <paramref name="reduction"/> says.</summary>
    public static Tensor Reduce(Tensor perToken, Tensor mask, LossReduction reduction) => reduction switch
    {
        LossReduction.TokenMean => MaskedMean(perToken, mask),
        LossReduction.SequenceMean => MaskedMean(perToken, mask, dim: -1).mean(),
        _ => throw new ArgumentOutOfRangeException(nameof(reduction)),
    };
}
