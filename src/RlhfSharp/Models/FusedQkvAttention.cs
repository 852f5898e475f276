namespace RlhfSharp.Models;

/// <summary>
/// Multi-head attention (every head its own K/V) of GPT-NeoX, OPT, GPT-J and BLOOM: one q/k/v projection, optional
/// partial rotary embeddings, an additive mask that may carry ALiBi, and the KV cache. GPT-NeoX and BLOOM fuse q/k/v per
/// head in HF too (<see cref="QkvLayout.PerHead"/>, the HF weight unchanged); OPT and GPT-J have separate q/k/v that the
/// weight map stacks as blocks (<see cref="QkvLayout.Blocks"/>).
/// </summary>
public sealed class FusedQkvAttention : AttentionBase
{
    /// <summary>How q, k and v sit in the fused projection's output.</summary>
    public enum QkvLayout
    {
        /// <summary>[q | k | v], each heads · head_dim wide.</summary>
        Blocks,
        /// <summary>Per head [q_h | k_h | v_h] (GPT-NeoX, BLOOM: the output viewed as (B, T, heads, 3, head_dim)).</summary>
        PerHead,
    }

    readonly int heads, headDim, layer;
    readonly QkvLayout qkvLayout;
    readonly PartialRotary? rotary;

    public FusedQkvAttention(TransformerConfig c, int layer, QkvLayout qkvLayout, PartialRotary? rotary, ScalarType? dtype = null) : base(nameof(FusedQkvAttention), c, 3 * c.NumHeads, dtype)
    {
        heads = c.NumHeads; headDim = c.HeadDim; this.layer = layer; this.qkvLayout = qkvLayout; this.rotary = rotary;
        RegisterComponents();
    }

    /// <param name="x">(B, T, hidden)</param>
    /// <param name="angles">cos and sin of <see cref="PartialRotary.Angles"/>, or null without rotary embeddings.</param>
    /// <param name="mask">additive mask (B or 1, 1 or heads, T, Tk) — ALiBi included — or null for plain causal attention without cache.</param>
    public Tensor Forward(Tensor x, (Tensor Cos, Tensor Sin)? angles, Tensor? mask, KvCache? cache)
    {
        long b = x.shape[0], t = x.shape[1];
        var qkv = ProjectQkv(x);
        // (B, T, 3, h, hd) or (B, T, h, 3, hd): pick q, k, v along the "3" axis.
        int axis = qkvLayout == QkvLayout.Blocks ? 2 : 3;
        qkv = qkvLayout == QkvLayout.Blocks ? qkv.view(b, t, 3, heads, headDim) : qkv.view(b, t, heads, 3, headDim);
        Tensor q = qkv.select(axis, 0), k = qkv.select(axis, 1), v = qkv.select(axis, 2); // (B, T, h, hd)
        if (rotary is not null && angles is { } a)
        {
            q = rotary.Apply(q, a);
            k = rotary.Apply(k, a);
        }
        k = k.transpose(1, 2); // (B, h, T, hd)
        v = v.transpose(1, 2);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        return ProjectOut(Attend(q, k, v, mask, Dropout.AttentionIn(training)));
    }
}
