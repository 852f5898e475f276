using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>Log-probabilities of the tokens a sequence actually has, from the logits that predicted them.</summary>
public static class TokenLogprobs
{
    /// <summary>
    /// (B, T, V) logits and (B, T) ids → (B, T−1): log p(ids[t+1] | ids[..t]), the log-softmax at the target token (TRL
    /// <c>selective_log_softmax</c>, which OpenRLHF's <c>log_probs_from_logits</c> also takes for its non-float32 logits),
    /// one sequence at a time, so only one (T, V) log-softmax exists at once.
    /// </summary>
    /// <remarks>
    /// Not <c>gather − logsumexp</c>, the float32 form of those two: LibTorch builds with oneMKL compute <c>exp</c> (and
    /// with it <c>logsumexp</c>) by MKL's vector math library, whose <c>vsExp</c> takes a slow scalar path for every input
    /// below −87.3 (the result is subnormal or 0), about 50 times slower per element there, and most of a vocabulary sits
    /// that far below its logsumexp whenever the distribution is peaked or the logits wide (random-init models with N(0, 1)
    /// tied embeddings: 94 % of it). <c>log_softmax</c> and <c>softmax</c> are LibTorch's own vectorised kernels, whose
    /// <c>exp</c> has no such path. <c>rlhf-bench exp-underflow</c> times both forms on 2,044 × 151,936 logits
    /// (docs/PERFORMANCE.md, "oneMKL's exp below −87.3").
    /// </remarks>
    /// <param name="temperature">The sampling temperature the ids were drawn at: logits are divided by it first, as TRL's
    /// GRPOTrainer (<c>logits /= self.temperature</c>) and OpenRLHF's <c>Actor.forward</c> (<c>logits.div_(temperature)</c>)
    /// do, so old, new and reference log-probs are of the distribution that sampled. 1 (or ≤ 0, greedy) leaves them raw.</param>
    public static Tensor Of(Tensor logits, Tensor ids, double temperature = 1.0)
    {
        long t = ids.shape[1];
        var predicting = Tempered(logits.narrow(1, 0, t - 1).to(ScalarType.Float32), temperature);
        var targets = ids.narrow(1, 1, t - 1).unsqueeze(-1);
        if (!is_grad_enabled() || !predicting.requires_grad) return AtTargets(predicting, targets);
        return Gathered.apply(predicting, targets)[0];
    }

    /// <summary>Entropy of each predicting position's distribution at <paramref name="temperature"/> (as <see cref="Of"/>), (B, T−1).</summary>
    public static Tensor Entropy(Tensor logits, double temperature = 1.0)
    {
        var x = Tempered(logits.narrow(1, 0, logits.shape[1] - 1).to(ScalarType.Float32), temperature);
        // softmax, not log_softmax(x).exp(): see Of's remarks on exp.
        return -(x.softmax(-1) * x.log_softmax(-1)).sum(-1);
    }

    /// <summary>log_softmax(x) at the targets, (B, T), one row of the batch at a time; no graph.</summary>
    static Tensor AtTargets(Tensor predicting, Tensor targets)
    {
        using var noGrad = no_grad();
        var result = empty(targets.shape[0], targets.shape[1], dtype: ScalarType.Float32, device: predicting.device);
        for (long b = 0; b < predicting.shape[0]; b++)
        {
            using var scope = NewDisposeScope();
            result[b].copy_(predicting[b].log_softmax(-1).gather(1, targets[b]).squeeze(-1));
        }
        return result;
    }

    /// <summary>
    /// <see cref="AtTargets"/> with its backward written as one pass: softmax(x) · (−g), then g added at the targets, in one
    /// (B, T, V) buffer, where autograd's backward of log_softmax and gather forms gather's zero-filled scatter and the
    /// log-softmax backward's output, and keeps the (B, T, V) log-softmax from the forward to the backward.
    /// </summary>
    sealed class Gathered : autograd.MultiTensorFunction<Gathered>
    {
        public override string Name => nameof(TokenLogprobs) + "." + nameof(Of);

        // vars: the predicting logits (B, T, V) float32, the targets (B, T, 1) int64.
        public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (predicting, targets) = ((Tensor)vars[0], (Tensor)vars[1]);
            // The logits are held by the caller's scope and by this node.
            ctx.save_for_backward([predicting, targets]);
            return [AtTargets(predicting, targets)];
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
        {
            // The saved tensors' wrappers end with the backward; only the gradient outlives it.
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (predicting, targets) = (saved[0], saved[1]);
            var g = grads[0].unsqueeze(-1);
            // d log p(y)/d x_j = 1[j = y] − p_j.
            var grad = predicting.softmax(-1).mul_(g.neg());
            grad.scatter_add_(2, targets, g);
            return [grad.MoveToOuterDisposeScope(), null!];
        }
    }

    static Tensor Tempered(Tensor logits, double temperature) => temperature > 0 && temperature != 1.0 ? logits / temperature : logits;
}
