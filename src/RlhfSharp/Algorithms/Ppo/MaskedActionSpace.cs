using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// The actor's distribution under NLPO's action mask, as RL4LMs computes it with <c>MaskableCategorical</c>
/// (allenai/RL4LMs@97df0bd <c>rl4lms/algorithms/common/maskable/distributions.py</c>, <c>apply_masking</c> and
/// <c>entropy</c>): the probabilities of forbidden tokens are set to 0 and the distribution's <c>logits</c> become
/// <c>probs_to_logits</c> of those masked probabilities, i.e. <c>log(clamp(p, eps, 1 − eps))</c> of the unmasked
/// softmax, NOT renormalised (torch's <c>Categorical(probs=…)</c> renormalises <c>probs</c>, but RL4LMs then overwrites
/// <c>logits</c> with the log of its own unnormalised argument, and <c>log_prob</c> reads <c>logits</c>). So an allowed
/// token's log-prob is its unmasked log-prob clamped to [log eps, log(1 − eps)], a forbidden one's is log eps, and the
/// entropy is −Σ over allowed tokens of that log-prob times the renormalised probability.
/// </summary>
/// <remarks>
/// Checked by running RL4LMs' class itself under torch 1.13 (gym and stable-baselines3 stubbed): for logits whose masked
/// set holds 60% of the mass, its log_prob equals the full log-softmax, not the renormalised one.
/// eps is float32's machine epsilon (torch's <c>clamp_probs</c> uses the dtype's <c>finfo.eps</c>; the logits here are float32).
/// </remarks>
public static class MaskedActionSpace
{
    static readonly double LogEps = Math.Log(MathF.BitIncrement(1f) - 1f);
    static readonly double LogOneMinusEps = Math.Log(1.0 - (MathF.BitIncrement(1f) - 1f));

    /// <summary>Log-probs of <paramref name="ids"/> under RL4LMs' masked distribution, (B, N).</summary>
    /// <param name="logits">The logits that predicted the N response tokens, (B, N, V).</param>
    /// <param name="ids">The response tokens, (B, N).</param>
    /// <param name="allowed">(B, N, V) bool, true for an allowed token.</param>
    /// <param name="temperature">As <see cref="Training.TokenLogprobs.Of"/>: the logits are divided by it first.</param>
    public static Tensor Logprobs(Tensor logits, Tensor ids, Tensor allowed, double temperature = 1.0)
    {
        var x = Tempered(logits, temperature);
        var index = ids.unsqueeze(-1);
        var lp = (x.gather(2, index) - x.logsumexp(-1, keepdim: true)).squeeze(-1).clamp(LogEps, LogOneMinusEps);
        return lp.masked_fill(allowed.gather(2, index).squeeze(-1).logical_not(), LogEps);
    }

    /// <summary>Entropy of RL4LMs' masked distribution at each response position, (B, N) (a diagnostic: NLPO's ent_coef is 0).</summary>
    public static Tensor Entropy(Tensor logits, Tensor allowed, double temperature = 1.0)
    {
        var lp = Tempered(logits, temperature).log_softmax(-1);
        var kept = lp.exp().masked_fill(allowed.logical_not(), 0f);
        var renormalised = kept / kept.sum(-1, keepdim: true);
        return -(lp.clamp(LogEps, LogOneMinusEps) * renormalised).sum(-1);
    }

    static Tensor Tempered(Tensor logits, double temperature)
    {
        var x = logits.to(ScalarType.Float32);
        return temperature > 0 && temperature != 1.0 ? x / temperature : x;
    }
}
