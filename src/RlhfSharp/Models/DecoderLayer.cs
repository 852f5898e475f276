using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>A pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)).</summary>
public sealed class DecoderLayer : nn.Module
{
#pragma warning disable IDE1006
    public readonly nn.Module<Tensor, Tensor> input_norm;
    public readonly Attention attn;
    public readonly nn.Module<Tensor, Tensor> post_norm;
    public readonly Mlp mlp;
#pragma warning restore IDE1006

    public DecoderLayer(TransformerConfig c, int layer, ScalarType? dtype = null) : base(nameof(DecoderLayer))
    {
        input_norm = Transformer.Norm(c, dtype);
        attn = new Attention(c, layer, dtype);
        post_norm = Transformer.Norm(c, dtype);
        mlp = new Mlp(c, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, (Tensor, Tensor)? rope, Tensor? mask, KvCache? cache)
    {
        x = x + attn.Forward(input_norm.forward(x), rope, mask, cache);
        return x + mlp.forward(post_norm.forward(x));
    }
}
