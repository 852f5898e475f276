using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// A pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)). Gemma 2 also norms each block's output
/// before the residual add (<see cref="TransformerConfig.SandwichNorms"/>); Mixtral and Qwen2-MoE put a
/// <see cref="SparseMoe"/> where the MLP is.
/// </summary>
public sealed class DecoderLayer : nn.Module, IDropoutHost
{
#pragma warning disable IDE1006
    public readonly nn.Module<Tensor, Tensor> input_norm;
    public readonly Attention attn;
    public readonly nn.Module<Tensor, Tensor>? attn_out_norm; // Gemma 2's post_attention_layernorm
    public readonly nn.Module<Tensor, Tensor> post_norm;
    public readonly nn.Module<Tensor, Tensor> mlp;            // an Mlp, or a SparseMoe
    public readonly nn.Module<Tensor, Tensor>? mlp_out_norm;  // Gemma 2's post_feedforward_layernorm
#pragma warning restore IDE1006

    /// <summary>Only <see cref="Dropouts.Residual"/> is read here: GPT-2's resid_pdrop (after c_proj of attention and MLP), Phi-3's resid_pdrop (resid_attn_dropout, resid_mlp_dropout).</summary>
    public Dropouts Dropout { get; set; }

    public DecoderLayer(TransformerConfig c, int layer, ScalarType? dtype = null) : base(nameof(DecoderLayer))
    {
        input_norm = Transformer.Norm(c, dtype);
        attn = new Attention(c, layer, dtype);
        if (c.SandwichNorms) attn_out_norm = Transformer.Norm(c, dtype);
        post_norm = Transformer.Norm(c, dtype);
        mlp = c.SparseLayer(layer) ? new SparseMoe(c, dtype) : new Mlp(c, dtype);
        if (c.SandwichNorms) mlp_out_norm = Transformer.Norm(c, dtype);
        Dropout = c.Dropout;
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, (Tensor, Tensor)? rope, Tensor? mask, KvCache? cache)
    {
        double p = Dropout.Residual;
        if (attn_out_norm is null)
        {
            x = x + Dropouts.Apply(attn.Forward(input_norm.forward(x), rope, mask, cache), p, training);
            return x + Dropouts.Apply(mlp.forward(post_norm.forward(x)), p, training);
        }
        // Gemma 2 has no residual dropout (its configs have none); were one set, it would act after the sandwich norm.
        x = x + Dropouts.Apply(attn_out_norm.forward(attn.Forward(input_norm.forward(x), rope, mask, cache)), p, training);
        return x + Dropouts.Apply(mlp_out_norm!.forward(mlp.forward(post_norm.forward(x))), p, training);
    }
}
