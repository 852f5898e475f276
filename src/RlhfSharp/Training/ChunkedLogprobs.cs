using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// Log-probs of target tokens, and optionally the entropies of the distributions, straight from final hidden states and
/// the LM head, a chunk of rows (token positions) at a time: logits → log-softmax → gather per chunk, so the (rows, V)
/// logits, and their log-softmax, never exist at once. For Qwen2.5-0.5B at 8 × 512 tokens that tensor alone is 2.5 GB
/// (issue 12 part 3); a chunk of 256 rows is 156 MB.
/// </summary>
/// <remarks>
/// The backward is chunked too: a custom autograd function (TorchSharp's <c>torch.autograd.MultiTensorFunction</c>) keeps
/// only its inputs for the backward and recomputes each chunk's logits there, then differentiates the log-softmax, gather,
/// temperature and soft-cap by hand into the gradients of the hidden states, the head's weight and its bias. This is
/// Liger-Kernel's fused linear cross-entropy (<c>src/liger_kernel/ops/fused_linear_cross_entropy.py</c>) for a per-token
/// output instead of a scalar loss: the upstream gradient of each token is only known in the backward, so the gradients
/// cannot be formed in the forward. Where the loss is a fixed weighted sum of the log-probs (SFT's cross-entropy),
/// <see cref="WeightedSum"/> does what Liger does: it forms the gradients in the forward, chunk by chunk, and the backward
/// only scales them, so no chunk's logits are computed twice. The per-row arithmetic is
/// <see cref="TokenLogprobs.Of(Tensor, Tensor, double)"/>'s (the log-softmax at the target, TRL <c>selective_log_softmax</c>;
/// probabilities by <c>softmax</c>, never <c>exp</c>, for the reason in its remarks) and <see cref="TokenLogprobs.Entropy"/>'s.
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

    /// <summary>
    /// Σ <paramref name="weights"/> · log p(<paramref name="targets"/>) over every row, a float32 scalar, differentiable with
    /// respect to the hidden states and the head's weight and bias: the form of a loss linear in the log-probs (SFT's summed
    /// NLL is its negation with the loss mask as weights). Its gradients are formed in the forward, with each chunk's
    /// logits, and kept for the backward, which scales them by the upstream gradient: one head GEMM per chunk fewer than
    /// <see cref="Of"/>'s recompute, for one (V, H) float32 buffer (the head's weight gradient) held from this forward to
    /// its backward. Under <c>no_grad</c>, or with nothing to differentiate, only the sum is computed.
    /// </summary>
    /// <param name="weights">Shaped like <paramref name="targets"/>: each row's weight (0 drops the row).</param>
    public static Tensor WeightedSum(Tensor hidden, Tensor targets, Tensor weights, LmHeadWeights head, double temperature, int chunkSize)
    {
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "a chunk holds at least one row");
        bool differentiate = is_grad_enabled() && (hidden.requires_grad || head.Weight.requires_grad || (head.Bias?.requires_grad ?? false));
        // Every temporary of the call ends with this scope; the gradients the forward forms are detached from it and live
        // until the backward has scaled them (FormedGradients).
        using var scope = NewDisposeScope();
        var rows = hidden.reshape(-1, hidden.shape[^1]);
        var sum = Weighted.apply(rows, head.Weight, head.Bias, targets.reshape(-1), weights.reshape(-1).to(ScalarType.Float32),
            new Settings(temperature, head.Softcap, chunkSize, Entropy: false), differentiate)[0];
        return sum.MoveToOuterDisposeScope();
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

    /// <summary>
    /// The gradient, with respect to the head's output (before soft-cap, in <paramref name="dtype"/>), of
    /// Σ g1 · log p(y) (+ Σ gEntropy · H) over a chunk whose (tempered, float32) logits are <paramref name="logits"/> (c, V),
    /// which it frees: the chunk holds two (c, V) buffers at most (three with the entropy's term).
    /// </summary>
    static Tensor LogitGradient(Tensor logits, Tensor? tanh, Tensor y, Tensor g1, Tensor? gEntropy, Settings s, ScalarType dtype)
    {
        Tensor g;
        if (gEntropy is null)
        {
            // d log p(y)/d logit_j = 1[j = y] − p_j.
            g = logits.softmax(-1).mul_(g1.neg());
            logits.Dispose();
            g.scatter_add_(1, y, g1);
        }
        else
        {
            // H = −Σ p log p, so dH/d logit_j = −p_j (log p_j + H); that term is built in logp's buffer.
            var p = logits.softmax(-1);
            var logp = logits.log_softmax(-1);
            logits.Dispose();
            var entropy = (p * logp).sum(-1, keepdim: true).neg_();
            var term = logp.add_(entropy).mul_(p).mul_(gEntropy);
            g = p.mul_(g1.neg());
            g.scatter_add_(1, y, g1);
            g.sub_(term);
        }
        if (s.Tempered) g.div_(s.Temperature);
        var gz = g.to(dtype);
        // cap·tanh(z/cap): the chain rule in autograd's order (× cap, × (1 − tanh²), ÷ cap).
        if (s.Softcap is double softcap) gz = gz * softcap * tanh!.square().neg_().add_(1) / softcap;
        return gz;
    }

    /// <summary>A chunk's share of the gradients: its rows' (written), and the head weight's and bias's (added, in float32).</summary>
    static void Accumulate(Tensor gz, Tensor h, Tensor weight, Tensor? gRows, Tensor? gWeight, Tensor? gBias)
    {
        gRows?.copy_(gz.mm(weight));
        if (gWeight is not null)
        {
            if (gz.dtype == ScalarType.Float32) gWeight.addmm_(gz.t(), h.to(ScalarType.Float32));
            else gWeight.add_(gz.t().mm(h).to(ScalarType.Float32));
        }
        // sum(dim: 0), not sum(0): a literal 0 converts to ScalarType and binds sum(ScalarType?) (a whole-tensor sum as uint8).
        gBias?.add_(gz.sum(dim: 0).to(ScalarType.Float32));
    }

    /// <summary>
    /// A float32 leaf weight (the model's own head, tied to the embedding or not) takes its gradient straight into its
    /// .grad, as AccumulateGrad would have added a returned one. Returned instead, the gradient would stay alive in its C#
    /// wrapper until the caller's dispose scope ends, so AccumulateGrad could not take it over and would copy it (and a
    /// tied embedding's gradient would be summed with it into a third): three (V, H) float32 buffers at once, 1.6 GB for
    /// Qwen2.5-0.5B's head, where this needs none beyond .grad.
    /// </summary>
    static bool IntoGrad(Tensor weight) => weight.is_leaf && weight.dtype == ScalarType.Float32;

    /// <summary><see cref="WeightedSum"/>'s node: the forward forms the gradients, the backward scales them.</summary>
    sealed class Weighted : TorchSharp.torch.autograd.MultiTensorFunction<Weighted>
    {
        public override string Name => nameof(ChunkedLogprobs) + "." + nameof(WeightedSum);

        // vars: hidden rows (N, H), weight (V, H), bias (V) or null, targets (N), weights (N) float32, Settings, differentiate.
        public override List<Tensor> forward(TorchSharp.torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var (rows, weight, bias, targets, weights, s, differentiate) =
                ((Tensor)vars[0], (Tensor)vars[1], vars[2] as Tensor, (Tensor)vars[3], (Tensor)vars[4], (Settings)vars[5], (bool)vars[6]);
            long n = rows.shape[0];
            var sum = zeros([], ScalarType.Float32, rows.device);
            var gRows = differentiate && rows.requires_grad ? zeros_like(rows) : null;
            // Accumulated over the chunks in float32 whatever the weight's dtype, as the backward of Of does.
            var gWeight = differentiate && weight.requires_grad ? zeros(weight.shape, ScalarType.Float32, weight.device) : null;
            var gBias = differentiate && (bias?.requires_grad ?? false) ? zeros(bias!.shape, ScalarType.Float32, bias.device) : null;
            for (long start = 0; start < n; start += s.ChunkSize)
            {
                using var scope = NewDisposeScope();
                long c = Math.Min(s.ChunkSize, n - start);
                var h = rows.narrow(0, start, c);
                var logits = Logits(h, weight, bias, s, out var tanh);
                var y = targets.narrow(0, start, c).unsqueeze(-1);
                var w = weights.narrow(0, start, c);
                using (var logp = logits.log_softmax(-1))
                    sum.add_(logp.gather(1, y).squeeze(-1).mul_(w).sum());
                if (!differentiate) continue;
                Accumulate(LogitGradient(logits, tanh, y, w.unsqueeze(1), null, s, rows.dtype), h, weight, gRows?.narrow(0, start, c), gWeight, gBias);
            }
            ctx.save_for_backward([weight, bias!]);
            // Kept as C# handles, not saved variables: TorchSharp's node releases its saved variables only when the graph is
            // disposed (after the whole backward), while these are freed as soon as the backward has used them.
            ctx.save_data("gradients", new FormedGradients(gRows?.DetachFromDisposeScope(), gWeight?.DetachFromDisposeScope(), gBias?.DetachFromDisposeScope()));
            return [sum];
        }

        public override List<Tensor> backward(TorchSharp.torch.autograd.AutogradContext ctx, List<Tensor> grads)
        {
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (weight, bias) = (saved[0], saved[1]);
            using var formed = (FormedGradients)ctx.get_data("gradients");
            if (formed.Released) throw new InvalidOperationException($"{Name}: a second backward through the same graph (retain_graph) is not supported");
            double g = grads[0].to(ScalarType.Float64).item<double>();
            Tensor? weightGrad = null;
            if (formed.Weight is not null && IntoGrad(weight))
            {
                if (weight.grad is null) weight.grad = zeros_like(weight);
                weight.grad.add_(formed.Weight, g);
            }
            else weightGrad = formed.Weight?.mul(g).to(weight.dtype).MoveToOuterDisposeScope();
            return [formed.Rows?.mul(g).MoveToOuterDisposeScope()!, weightGrad!, formed.Bias?.mul(g).to(bias.dtype).MoveToOuterDisposeScope()!, null!, null!, null!, null!];
        }
    }

    /// <summary>The gradients <see cref="WeightedSum"/>'s forward formed, until its backward has scaled them.</summary>
    sealed class FormedGradients(Tensor? rows, Tensor? weight, Tensor? bias) : IDisposable
    {
        public Tensor? Rows => rows;
        public Tensor? Weight => weight;
        public Tensor? Bias => bias;
        public bool Released { get; private set; }

        public void Dispose()
        {
            rows?.Dispose(); weight?.Dispose(); bias?.Dispose();
            Released = true;
        }
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
                var lp = logits.log_softmax(-1);
                logprobs.narrow(0, start, c).copy_(lp.gather(1, y).squeeze(-1));
                if (entropy is not null) entropy.narrow(0, start, c).copy_(-logits.softmax(-1).mul_(lp).sum(-1));
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
            // IntoGrad: the chunks' gradients go straight into .grad. Rounding is unchanged when .grad starts at zero
            // (0 + c₁ + c₂ … in the same order); over accumulated micro-batches the chunks are added to the running gradient
            // one by one instead of as their sum.
            bool intoGrad = needs[1] && IntoGrad(weight);
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
                var gz = LogitGradient(logits, tanh, targets.narrow(0, start, c).unsqueeze(-1), gLogprobs.narrow(0, start, c).unsqueeze(1),
                    gEntropy?.narrow(0, start, c).unsqueeze(1), s, rows.dtype);
                Accumulate(gz, h, weight, gRows?.narrow(0, start, c), gWeight, gBias);
            }
            return [gRows!, intoGrad ? null! : gWeight?.to(weight.dtype)!, gBias?.to(bias!.dtype)!, null!, null!];
        }
    }
}
