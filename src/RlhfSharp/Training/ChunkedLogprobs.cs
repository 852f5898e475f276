using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// Log-probs of target tokens, and optionally the entropies of the distributions, straight from final hidden states and
/// the LM head, a chunk of rows (token positions) at a time: logits → logsumexp → gather per chunk, so the (rows, V)
/// logits, and their log-softmax, never exist at once. For Qwen2.5-0.5B at 8 × 512 tokens that tensor alone is 2.5 GB
/// (issue 12 part 3); a chunk of 256 rows is 156 MB.
/// </summary>
/// <remarks>
/// The backward is chunked too: a custom autograd function (TorchSharp's <c>torch.autograd.MultiTensorFunction</c>) keeps
/// only its inputs for the backward and recomputes each chunk's logits there, then differentiates logsumexp, gather,
/// temperature and soft-cap by hand into the gradients of the hidden states, the head's weight and its bias. This is
/// Liger-Kernel's fused linear cross-entropy (<c>src/liger_kernel/ops/fused_linear_cross_entropy.py</c>, which chunks rows
/// and recomputes logits) for a per-token output instead of a scalar loss: the upstream gradient of each token is only
/// known in the backward, so the gradients cannot be formed in the forward as Liger does. The per-row arithmetic is
/// <see cref="TokenLogprobs.Of(Tensor, Tensor, double)"/>'s (gathered logit − logsumexp, OpenRLHF
/// <c>log_probs_from_logits</c>, TRL <c>selective_log_softmax</c>) and <see cref="TokenLogprobs.Entropy"/>'s.
/// </remarks>
public static class ChunkedLogprobs
{
    /// <summary>
    /// <paramref name="hidden"/> (…, H) predicts <paramref name="targets"/> (…): returns log p(target) and, when
    /// <paramref name="entropy"/>, the entropy of each row's distribution, both float32 and shaped like
    /// <paramref name="targets"/>. Both are differentiable with respect to the hidden states and the head's weight and bias.
    /// </summary>
    /// <param name="temperature">As <see cref="TokenLogprobs.Of(Tensor, Tensor, double)"/>: logits are divided by it first (1 or ≤ 0: raw).</param>
    /// <param name="chunkSize">Rows per chunk (&gt; 0).</param>
    public static (Tensor Logprobs, Tensor? Entropy) Of(Tensor hidden, Tensor targets, LmHeadWeights head, double temperature, int chunkSize, bool entropy = false)
    {
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "a chunk holds at least one row");
        var shape = targets.shape;
        var rows = hidden.reshape(-1, hidden.shape[^1]);
        var outputs = Function.apply(rows, head.Weight, head.Bias, targets.reshape(-1), new Settings(temperature, head.Softcap, chunkSize, entropy));
        return (outputs[0].reshape(shape), entropy ? outputs[1].reshape(shape) : null);
    }

    sealed record Settings(double Temperature, double? Softcap, int ChunkSize, bool Entropy)
    {
        public bool Tempered => Temperature > 0 && Temperature != 1.0;
    }

    /// <summary>
    /// The chunk's logits as <see cref="CausalLM.Head"/> and <see cref="TokenLogprobs"/> make them (head, soft-cap, float32,
    /// temperature), each step's input freed as soon as it is used so the chunk holds one (c, V) buffer; with a soft-cap
    /// its tanh (which the backward needs) is kept and returned.
    /// </summary>
    static Tensor Logits(Tensor rows, Tensor weight, Tensor? bias, Settings s, out Tensor? tanh)
    {
        var logits = nn.functional.linear(rows, weight, bias);
        tanh = null;
        if (s.Softcap is double cap)
        {
            var scaled = logits / cap;
            logits.Dispose();
            tanh = scaled.tanh_();
            logits = tanh * cap;
        }
        if (logits.dtype != ScalarType.Float32)
        {
            var wide = logits.to(ScalarType.Float32);
            logits.Dispose();
            logits = wide;
        }
        return s.Tempered ? logits.div_(s.Temperature) : logits;
    }

    sealed class Function : TorchSharp.torch.autograd.MultiTensorFunction<Function>
    {
        public override string Name => nameof(ChunkedLogprobs);

        // vars: hidden rows (N, H), weight (V, H), bias (V) or null, targets (N), Settings.
        public override List<Tensor> forward(TorchSharp.torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var (rows, weight, bias, targets, s) = ((Tensor)vars[0], (Tensor)vars[1], vars[2] as Tensor, (Tensor)vars[3], (Settings)vars[4]);
            long n = rows.shape[0];
            var logprobs = empty(n, ScalarType.Float32, rows.device);
            var entropy = s.Entropy ? empty(n, ScalarType.Float32, rows.device) : null;
            for (long start = 0; start < n; start += s.ChunkSize)
            {
                using var scope = NewDisposeScope();
                long c = Math.Min(s.ChunkSize, n - start);
                var logits = Logits(rows.narrow(0, start, c), weight, bias, s, out _);
                var y = targets.narrow(0, start, c).unsqueeze(-1);
                logprobs.narrow(0, start, c).copy_(logits.gather(1, y).squeeze(-1) - logits.logsumexp(-1));
                if (entropy is not null)
                {
                    var lp = logits.log_softmax(-1);
                    logits.Dispose();
                    entropy.narrow(0, start, c).copy_(-lp.exp().mul_(lp).sum(-1));
                }
            }
            ctx.save_for_backward([rows, weight, bias!, targets]);
            ctx.save_data("settings", s);
            ctx.save_data("needs", new[] { rows.requires_grad, weight.requires_grad, bias?.requires_grad ?? false });
            return entropy is null ? [logprobs] : [logprobs, entropy];
        }

        public override List<Tensor> backward(TorchSharp.torch.autograd.AutogradContext ctx, List<Tensor> grads)
        {
            var saved = ctx.get_saved_variables();
            var (rows, weight, bias, targets) = (saved[0], saved[1], saved[2], saved[3]);
            var s = (Settings)ctx.get_data("settings");
            var needs = (bool[])ctx.get_data("needs");
            var gLogprobs = grads[0].to(ScalarType.Float32).contiguous();
            // The entropy is mostly a logged diagnostic: its gradient is zero unless a loss used it, and then its term is skipped.
            var gEntropy = grads.Count > 1 && grads[1].count_nonzero().item<long>() > 0 ? grads[1].to(ScalarType.Float32).contiguous() : null;
            long n = rows.shape[0];
            var gRows = needs[0] ? zeros_like(rows) : null;
            // A float32 leaf weight (the model's own head, tied to the embedding or not) takes the chunks' gradients straight
            // into its .grad, as AccumulateGrad would have added the returned sum. Returned instead, the sum would stay
            // alive in this wrapper until the caller's dispose scope ends, so AccumulateGrad could not take it over and
            // would copy it (and a tied embedding's gradient would be summed with it into a third): three (V, H) float32
            // buffers at once, 1.6 GB for Qwen2.5-0.5B's head, where this needs none beyond .grad. Rounding is unchanged
            // when .grad starts at zero (0 + c₁ + c₂ … in the same order); over accumulated micro-batches the chunks are
            // added to the running gradient one by one instead of as their sum.
            bool intoGrad = needs[1] && weight.is_leaf && weight.dtype == ScalarType.Float32;
            Tensor? gWeight = null;
            if (intoGrad)
            {
                if (weight.grad is null) weight.grad = zeros_like(weight);
                gWeight = weight.grad;
            }
            // Otherwise accumulated over the chunks in float32 whatever the weight's dtype, then returned in it.
            else if (needs[1]) gWeight = zeros(weight.shape, ScalarType.Float32, weight.device);
            var gBias = needs[2] ? zeros(bias!.shape, ScalarType.Float32, bias.device) : null;
            for (long start = 0; start < n; start += s.ChunkSize)
            {
                using var scope = NewDisposeScope();
                long c = Math.Min(s.ChunkSize, n - start);
                var h = rows.narrow(0, start, c);
                var logits = Logits(h, weight, bias, s, out var tanh);
                var g1 = gLogprobs.narrow(0, start, c).unsqueeze(1);
                // log p in the logits' buffer: the chunk's peak is one (c, V) buffer, two with the entropy's term.
                var logp = logits.sub_(logits.logsumexp(-1, keepdim: true));
                var y = targets.narrow(0, start, c).unsqueeze(-1);
                Tensor g;
                if (gEntropy is null)
                {
                    // d log p(y)/d logit_j = 1[j = y] − p_j: autograd's logsumexp backward (grad · exp(x − lse)) and gather's scatter.
                    g = logp.exp_().mul_(g1.neg());
                    g.scatter_add_(1, y, g1);
                }
                else
                {
                    // H = −Σ p log p, so dH/d logit_j = −p_j (log p_j + H); that term is built in logp's buffer.
                    var p = logp.exp();
                    var entropy = (p * logp).sum(-1, keepdim: true).neg_();
                    var term = logp.add_(entropy).mul_(p).mul_(gEntropy.narrow(0, start, c).unsqueeze(1));
                    g = p.mul_(g1.neg());
                    g.scatter_add_(1, y, g1);
                    g.sub_(term);
                }
                if (s.Tempered) g.div_(s.Temperature);
                var gz = g.to(rows.dtype);
                // cap·tanh(z/cap): the chain rule in autograd's order (× cap, × (1 − tanh²), ÷ cap).
                if (s.Softcap is double softcap) gz = gz * softcap * tanh!.square().neg_().add_(1) / softcap;
                gRows?.narrow(0, start, c).copy_(gz.mm(weight));
                if (gWeight is not null)
                {
                    if (gz.dtype == ScalarType.Float32) gWeight.addmm_(gz.t(), h.to(ScalarType.Float32));
                    else gWeight.add_(gz.t().mm(h).to(ScalarType.Float32));
                }
                // sum(dim: 0), not sum(0): a literal 0 converts to ScalarType and binds sum(ScalarType?) (a whole-tensor sum as uint8).
                gBias?.add_(gz.sum(dim: 0).to(ScalarType.Float32));
            }
            return [gRows!, intoGrad ? null! : gWeight?.to(weight.dtype)!, gBias?.to(bias!.dtype)!, null!, null!];
        }
    }
}
