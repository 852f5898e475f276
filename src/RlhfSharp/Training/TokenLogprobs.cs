using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>Log-probabilities of the tokens a sequence actually has, from the logits that predicted them.</summary>
public static class TokenLogprobs
{
    /// <summary>
    /// (B, T, V) logits and (B, T) ids → (B, T−1): log p(ids[t+1] | ids[..t]). Computed as the gathered logit minus
    /// logsumexp, which never materialises the (B, T, V) log-softmax (OpenRLHF <c>log_probs_from_logits</c>).
    /// </summary>
    /// <param name="temperature">The sampling temperature the ids were drawn at: logits are divided by it first, as TRL's
    /// GRPOTrainer (<c>logits /= self.temperature</c>) and OpenRLHF's <c>Actor.forward</c> (<c>logits.div_(temperature)</c>)
    /// do, so old, new and reference log-probs are of the distribution that sampled. 1 (or ≤ 0, greedy) leaves them raw.</param>
    public static Tensor Of(Tensor logits, Tensor ids, double temperature = 1.0)
    {
        long t = ids.shape[1];
        var predicting = Tempered(logits.narrow(1, 0, t - 1).to(ScalarType.Float32), temperature);
        var targets = ids.narrow(1, 1, t - 1).unsqueeze(-1);
        return predicting.gather(2, targets).squeeze(-1) - predicting.logsumexp(-1);
    }

    /// <summary>Entropy of each predicting position's distribution at <paramref name="temperature"/> (as <see cref="Of"/>), (B, T−1).</summary>
    public static Tensor Entropy(Tensor logits, double temperature = 1.0)
    {
        var lp = Tempered(logits.narrow(1, 0, logits.shape[1] - 1).to(ScalarType.Float32), temperature).log_softmax(-1);
        return -(lp.exp() * lp).sum(-1);
    }

    static Tensor Tempered(Tensor logits, double temperature) => temperature > 0 && temperature != 1.0 ? logits / temperature : logits;
}
