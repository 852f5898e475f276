using RlhfSharp.Lora;
using TorchSharp.Modules;

namespace RlhfSharp.Models;

/// <summary>
/// What every decoder attention block shares (<see cref="Attention"/> for GPT-2 and the LLaMA family,
/// <see cref="FusedQkvAttention"/> for OPT, GPT-NeoX, GPT-J and BLOOM): one fused q/k/v projection and the output
/// projection, both LoRA hosts under HF's projection names, and scaled dot-product attention over heads that each
/// have their own K/V. The blocks differ in how they split q/k/v and place positions, which they write themselves.
/// </summary>
public abstract class AttentionBase : nn.Module, ILoraHost, IDropoutHost
{
#pragma warning disable IDE1006
    public readonly Linear qkv_proj;
    public readonly Linear o_proj;
#pragma warning restore IDE1006
    readonly LoraSlots lora; // adapters attached after loading (LoraModel.Attach)

    /// <summary>Only <see cref="Dropouts.Attention"/> is read here: on the attention probabilities, in training.</summary>
    public Dropouts Dropout { get; set; }

    /// <param name="qkvHeads">Heads the fused projection produces: q, k and v heads together.</param>
    protected AttentionBase(string name, TransformerConfig c, int qkvHeads, ScalarType? dtype) : base(name)
    {
        qkv_proj = LayerInit.Linear(c.HiddenSize, qkvHeads * c.HeadDim, hasBias: c.QkvBias, dtype);
        o_proj = LayerInit.Linear(c.NumHeads * c.HeadDim, c.HiddenSize, hasBias: c.OutputBias, dtype);
        lora = new LoraSlots(this, "attention", (nameof(qkv_proj), qkv_proj), (nameof(o_proj), o_proj));
        Dropout = c.Dropout;
    }

    /// <summary>Adds a LoRA adapter to <c>qkv_proj</c> or <c>o_proj</c>.</summary>
    public void AttachLora(string projection, LoraAdapter adapter) => lora.Attach(projection, adapter);

    /// <summary>q, k and v of <paramref name="x"/> (B, T, hidden) in one (B, T, qkvHeads · head_dim) tensor.</summary>
    protected Tensor ProjectQkv(Tensor x) => lora.Forward(qkv_proj, x);

    /// <summary>The output projection of the heads' concatenated outputs (B, T, heads · head_dim).</summary>
    protected Tensor ProjectOut(Tensor y) => lora.Forward(o_proj, y);

    /// <summary>
    /// Attention of q (B, T, h, hd) over k and v (B, h, Tk, hd), one K/V head per query head: plain causal without a
    /// mask (no padding, no cache), else the additive <paramref name="mask"/>. Returns the heads concatenated, (B, T, h · hd).
    /// <paramref name="p"/> drops attention probabilities (scaled_dot_product_attention's dropout_p, as the sdpa path of
    /// transformers v4.44 passes <c>attention_dropout if self.training else 0.0</c>).
    /// </summary>
    protected static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? mask, double p)
    {
        long b = q.shape[0], t = q.shape[1];
        q = q.transpose(1, 2); // (B, h, T, hd)
        var y = mask is null
            ? nn.functional.scaled_dot_product_attention(q, k, v, p: p, is_casual: true)
            : nn.functional.scaled_dot_product_attention(q, k, v, mask, p);
        return y.transpose(1, 2).reshape(b, t, q.shape[1] * q.shape[3]);
    }
}
