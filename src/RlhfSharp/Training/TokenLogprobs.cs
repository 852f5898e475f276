using TorchSharp;
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
        if (!is_grad_enabled() || !predicting.requires_grad) return predicting.gather(2, targets).squeeze(-1) - predicting.logsumexp(-1);
        return Gathered.apply(predicting, targets)[0];
    }

    /// <summary>Entropy of each predicting position's distribution at <paramref name="temperature"/> (as <see cref="Of"/>), (B, T−1).</summary>
    public static Tensor Entropy(Tensor logits, double temperature = 1.0)
    {
        var lp = Tempered(logits.narrow(1, 0, logits.shape[1] - 1).to(ScalarType.Float32), temperature).log_softmax(-1);
        return -(lp.exp() * lp).sum(-1);
    }

    /// <summary>
    /// <c>gather − logsumexp</c> with the backward written as one pass: exp(x − lse) · (−g), then g added at the targets, in
    /// one (B, T, V) buffer. Autograd's own backward of the same expression forms gather's zero-filled scatter, x − lse,
    /// its exp and their product as four buffers of the logits' size (LibTorch's <c>logsumexp_backward</c> and
    /// <c>gather_backward</c>, derivatives.yaml) and then sums two of them. The values are the same bit for bit:
    /// the same products and one addition per element, with the zero autograd adds everywhere else kept
    /// (x + 0 turns a −0 into +0).
    /// </summary>
    sealed class Gathered : autograd.MultiTensorFunction<Gathered>
    {
        public override string Name => nameof(TokenLogprobs) + "." + nameof(Of);

        // vars: the predicting logits (B, T, V) float32, the targets (B, T, 1) int64.
        public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (predicting, targets) = ((Tensor)vars[0], (Tensor)vars[1]);
            var lse = predicting.logsumexp(-1);
            // The logits are held by the caller's scope and by this node, as autograd's logsumexp node held them.
            ctx.save_for_backward([predicting, lse, targets]);
            return [predicting.gather(2, targets).squeeze(-1) - lse];
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
        {
            // The saved tensors' wrappers end with the backward; only the gradient outlives it.
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (predicting, lse, targets) = (saved[0], saved[1], saved[2]);
            var g = grads[0].unsqueeze(-1);
            var grad = (predicting - lse.unsqueeze(-1)).exp_().mul_(g.neg()).add_(0.0);
            grad.scatter_add_(2, targets, g);
            return [grad.MoveToOuterDisposeScope(), null!];
        }
    }

    static Tensor Tempered(Tensor logits, double temperature) => temperature > 0 && temperature != 1.0 ? logits / temperature : logits;
}
