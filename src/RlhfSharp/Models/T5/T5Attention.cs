using RlhfSharp.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.T5;

/// <summary>
/// T5's multi-head attention (transformers v4.44 modeling_t5.py <c>T5Attention</c>): q, k, v, o without bias, inner
/// width heads·d_kv, and scores <c>q·kᵀ</c> with no 1/√d_kv scaling (T5 folds it into the initialisation) plus an
/// additive bias (relative positions and the mask). Only the first layer of each stack owns
/// <c>relative_attention_bias</c>; the stack computes the bias once and every layer adds it.
/// </summary>
public sealed class T5Attention : nn.Module, ILoraHost, IDropoutHost
{
#pragma warning disable IDE1006 // HF parameter names
    public readonly Linear q, k, v, o;
    public readonly Embedding? relative_attention_bias;
#pragma warning restore IDE1006
    readonly int heads, dKv;
    readonly LoraSlots lora; // adapters attached after loading (T5Lora.Attach)

    /// <summary>Only <see cref="Dropouts.Attention"/> is read here: T5Attention's dropout on the attention weights.</summary>
    public Dropouts Dropout { get; set; }

    public T5Attention(T5Config c, bool hasRelativeAttentionBias, ScalarType? dtype = null) : base(nameof(T5Attention))
    {
        heads = c.NumHeads; dKv = c.DKv;
        q = nn.Linear(c.DModel, c.InnerDim, hasBias: false, dtype: dtype);
        k = nn.Linear(c.DModel, c.InnerDim, hasBias: false, dtype: dtype);
        v = nn.Linear(c.DModel, c.InnerDim, hasBias: false, dtype: dtype);
        o = nn.Linear(c.InnerDim, c.DModel, hasBias: false, dtype: dtype);
        if (hasRelativeAttentionBias) relative_attention_bias = nn.Embedding(c.RelativeAttentionNumBuckets, c.NumHeads, dtype: dtype);
        lora = new LoraSlots(this, "T5 attention", (nameof(q), q), (nameof(k), k), (nameof(v), v), (nameof(o), o));
        Dropout = c.Dropout;
        RegisterComponents();
    }

    /// <summary>Adds a LoRA adapter to <c>q</c>, <c>k</c>, <c>v</c> or <c>o</c> (PEFT's T5 targets are q and v).</summary>
    public void AttachLora(string projection, LoraAdapter adapter) => lora.Attach(projection, adapter);

    /// <summary>Keys or values of <paramref name="states"/> (B, Tk, d_model) as (B, heads, Tk, d_kv).</summary>
    public Tensor Keys(Tensor states) => Split(lora.Forward(k, states));
    public Tensor Values(Tensor states) => Split(lora.Forward(v, states));

    Tensor Split(Tensor x) => x.view(x.shape[0], x.shape[1], heads, dKv).transpose(1, 2);

    /// <param name="x">queries' hidden states (B, T, d_model)</param>
    /// <param name="keys">(B, heads, Tk, d_kv)</param>
    /// <param name="values">(B, heads, Tk, d_kv)</param>
    /// <param name="bias">additive (B or 1, heads or 1, T, Tk): position bias plus mask</param>
    public Tensor Forward(Tensor x, Tensor keys, Tensor values, Tensor bias)
    {
        long b = x.shape[0], t = x.shape[1];
        var query = Split(lora.Forward(q, x));
        var scores = matmul(query, keys.transpose(2, 3)) + bias;
        // modeling_t5.py: softmax in float32, then back to the scores' dtype.
        var weights = Dropouts.Apply(nn.functional.softmax(scores.to(ScalarType.Float32), -1).to(scores.dtype), Dropout.Attention, training);
        var y = matmul(weights, values).transpose(1, 2).reshape(b, t, heads * dKv);
        return lora.Forward(o, y);
    }

    /// <summary>The position bias (1, heads, T, Tk) from this layer's bucket embedding.</summary>
    public Tensor PositionBias(Tensor buckets) =>
        (relative_attention_bias ?? throw new InvalidOperationException("only a stack's first layer owns relative_attention_bias"))
            .forward(buckets).permute(2, 0, 1).unsqueeze(0);
}
