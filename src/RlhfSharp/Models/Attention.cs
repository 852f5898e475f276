namespace RlhfSharp.Models;

/// <summary>
/// Multi-head attention with grouped-query heads (Ainslie et al. 2023), rotate_half RoPE for the LLaMA
/// family, and an optional KV cache. q, k and v come from one fused projection (fewer ops per step; the
/// checkpoint code splits and joins HF's separate q/k/v weights).
/// </summary>
public sealed class Attention : AttentionBase
{
    readonly int heads, kvHeads, headDim, layer;
    readonly bool rotary;
    readonly double? scale, softcap; // Gemma 2: query_pre_attn_scalar^-1/2 and attn_logit_softcapping (null: sdpa's defaults)

    public Attention(TransformerConfig c, int layer, ScalarType? dtype = null) : base(nameof(Attention), c, c.NumHeads + 2 * c.NumKvHeads, dtype)
    {
        heads = c.NumHeads; kvHeads = c.NumKvHeads; headDim = c.HeadDim; this.layer = layer;
        rotary = c.Family == ModelFamily.Llama;
        if (c.ExplicitAttentionScores)
        {
            scale = 1.0 / Math.Sqrt(c.QueryPreAttnScalar ?? headDim);
            softcap = c.AttnLogitSoftcap;
        }
        RegisterComponents();
    }

    /// <param name="x">(B, T, hidden)</param>
    /// <param name="rope">cos and sin, each (B, T, 1, headDim), or null for learned positions.</param>
    /// <param name="mask">additive mask (B or 1, 1, T, Tk) — for grouped-query attention already repeated to (B or 1, 1, rep·T, Tk) — or null for plain causal attention without cache.</param>
    public Tensor Forward(Tensor x, (Tensor Cos, Tensor Sin)? rope, Tensor? mask, KvCache? cache)
    {
        long b = x.shape[0], t = x.shape[1];
        var qkv = ProjectQkv(x).view(b, t, heads + 2 * kvHeads, headDim);
        Tensor q, k, v;
        if (rope is var (cos, sin))
        {
            // Rotate q and k together: one set of ops for both.
            var qk = qkv.narrow(2, 0, heads + kvHeads);
            var halves = qk.chunk(2, -1);
            var rotated = qk * cos + cat([halves[1].neg(), halves[0]], -1) * sin;
            q = rotated.narrow(2, 0, heads);
            k = rotated.narrow(2, heads, kvHeads);
        }
        else
        {
            q = qkv.narrow(2, 0, heads);
            k = qkv.narrow(2, heads, kvHeads);
        }
        v = qkv.narrow(2, heads + kvHeads, kvHeads);
        k = k.transpose(1, 2); // (B, kvh, T, hd)
        v = v.transpose(1, 2);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);

        int rep = heads / kvHeads;
        Tensor y;
        if (scale is double s)
        {
            // Scores written out (Gemma2Attention, eager): q·kᵀ·scale, soft-capped, then the mask, softmax in float32.
            var qg = q.reshape(b, t, kvHeads, rep, headDim).permute(0, 2, 3, 1, 4).reshape(b, kvHeads, rep * t, headDim);
            var scores = qg.matmul(k.transpose(2, 3)) * s;             // (B, kvh, rep·T, Tk)
            if (softcap is double cap) scores = (scores / cap).tanh() * cap;
            scores = scores + (mask ?? throw new ArgumentException("explicit attention scores need an explicit mask"));
            var probs = Dropouts.Apply(scores.softmax(-1, ScalarType.Float32).to(q.dtype), Dropout.Attention, training);
            y = probs.matmul(v).view(b, kvHeads, rep, t, headDim).permute(0, 3, 1, 2, 4).reshape(b, t, heads * headDim);
        }
        else if (rep == 1) y = Attend(q, k, v, mask, Dropout.AttentionIn(training));
        else
        {
            // Grouped-query: fold the query heads that share a KV head into the query-length axis, so K/V are
            // never copied: (B, T, kvh·rep, hd) → (B, kvh, rep·T, hd). HF maps query head h to KV head h / rep.
            var qg = q.reshape(b, t, kvHeads, rep, headDim).permute(0, 2, 3, 1, 4).reshape(b, kvHeads, rep * t, headDim);
            y = nn.functional.scaled_dot_product_attention(qg, k, v, mask ?? throw new ArgumentException("grouped-query attention needs an explicit mask"), Dropout.AttentionIn(training));
            y = y.view(b, kvHeads, rep, t, headDim).permute(0, 3, 1, 2, 4).reshape(b, t, heads * headDim);
        }
        return ProjectOut(y);
    }
}
