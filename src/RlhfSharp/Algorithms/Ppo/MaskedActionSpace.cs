using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// The actor's distribution restricted to allowed tokens (invalid action masking, Huang &amp; Ontañón 2020,
/// arXiv:2006.14171), which NLPO puts under PPO: the probability of every forbidden token is zero and the rest are
/// renormalised, as <c>MaskableCategorical.apply_masking</c> does (allenai/RL4LMs@97df0bd
/// <c>rl4lms/algorithms/common/maskable/distributions.py</c>; it zeroes the probabilities and renormalises).
/// </summary>
public static class MaskedActionSpace
{
    /// <summary>
    /// Log-probs of <paramref name="ids"/> under the masked distribution: <c>log_softmax(where(allowed, logits/T, −∞))</c>
    /// gathered at the ids, (B, N). A forbidden logit is filled with the dtype's lowest finite value rather than −∞, so its
    /// probability is exactly 0 and the entropy's <c>p·log p</c> is 0 instead of NaN.
    /// </summary>
    /// <param name="logits">The logits that predicted the N response tokens, (B, N, V).</param>
    /// <param name="ids">The response tokens, (B, N).</param>
    /// <param name="allowed">(B, N, V) bool, true for an allowed token.</param>
    /// <param name="temperature">As <see cref="Training.TokenLogprobs.Of"/>: the logits are divided by it first.</param>
    public static Tensor Logprobs(Tensor logits, Tensor ids, Tensor allowed, double temperature = 1.0)
    {
        var lp = Masked(logits, allowed, temperature).log_softmax(-1);
        return lp.gather(2, ids.unsqueeze(-1)).squeeze(-1);
    }

    /// <summary>Entropy of the masked distribution at each response position, (B, N).</summary>
    public static Tensor Entropy(Tensor logits, Tensor allowed, double temperature = 1.0)
    {
        var lp = Masked(logits, allowed, temperature).log_softmax(-1);
        return -(lp.exp() * lp).sum(-1);
    }

    static Tensor Masked(Tensor logits, Tensor allowed, double temperature)
    {
        var x = logits.to(ScalarType.Float32);
        if (temperature > 0 && temperature != 1.0) x = x / temperature;
        return x.masked_fill(allowed.logical_not(), float.MinValue);
    }
}
