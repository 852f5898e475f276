using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// A pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)). Gemma 2 also norms each block's output
/// before the residual add (<see cref="TransformerConfig.SandwichNorms"/>); Mixtral and Qwen2-MoE put a
/// <see cref="SparseMoe"/> where the MLP is.
/// </summary>
public sealed class DecoderLayer : nn.Module
{
#pragma warning disable IDE1006
    public readonly nn.Module<Tensor, Tensor> input_norm;
    public readonly Attention attn;
    public readonly nn.Module<Tensor, Tensor>? attn_out_norm; // Gemma 2's post_attention_layernorm
    public readonly nn.Module<Tensor, Tensor> post_norm;
    public readonly nn.Module<Tensor, Tensor> mlp;            // an Mlp, or a SparseMoe
    public readonly nn.Module<Tensor, Tensor>? mlp_out_norm;  // Gemma 2's post_feedforward_layernorm
#pragma warning restore IDE1006

    public DecoderLayer(TransformerConfig c, int layer, ScalarType? dtype = null) : base(nameof(DecoderLayer))
    {
        input_norm = Transformer.Norm(c, dtype);
        attn = new Attention(c, layer, dtype);
        if (c.SandwichNorms) attn_out_norm = Transformer.Norm(c, dtype);
        post_norm = Transformer.Norm(c, dtype);
        mlp = c.SparseLayer(layer) ? new SparseMoe(c, dtype) : new Mlp(c, dtype);
        if (c.SandwichNorms) mlp_out_norm = Transformer.Norm(c, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, (Tensor, Tensor)? rope, Tensor? mask, KvCache? cache)
    {
        if (attn_out_norm is null)
        {
            x = x + attn.Forward(input_norm.forward(x), rope, mask, cache);
            return x + mlp.forward(post_norm.forward(x));
        }
        x = x + attn_out_norm.forward(attn.Forward(input_norm.forward(x), rope, mask, cache));
        return x + mlp_out_norm!.forward(mlp.forward(post_norm.forward(x)));
    }
}
