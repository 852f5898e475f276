using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>Log-probabilities of the tokens a sequence actually has, from the logits that predicted them.</summary>
public static class TokenLogprobs
{
    /// <summary>
    /// (B, T, V) logits and (B, T) ids → (B, T−1): log p(ids[t+1] | ids[..t]). Computed as the gathered logit minus
    /// logsumexp, which never materialises the (B, T, V) log-softmax (OpenRLHF <c>log_probs_from_logits</c>).
    /// </summary>
    public static Tensor Of(Tensor logits, Tensor ids)
    {
        long t = ids.shape[1];
        var predicting = logits.narrow(1, 0, t - 1).to(ScalarType.Float32);
        var targets = ids.narrow(1, 1, t - 1).unsqueeze(-1);
        return predicting.gather(2, targets).squeeze(-1) - predicting.logsumexp(-1);
    }

    /// <summary>Entropy of each predicting position's distribution, (B, T−1).</summary>
    public static Tensor Entropy(Tensor logits)
    {
        var lp = logits.narrow(1, 0, logits.shape[1] - 1).to(ScalarType.Float32).log_softmax(-1);
        return -(lp.exp() * lp).sum(-1);
    }
}
