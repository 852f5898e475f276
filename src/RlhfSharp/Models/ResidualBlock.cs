using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>How a block of GPT-NeoX, OPT, GPT-J or BLOOM wires its norms and residuals around attention and the MLP.</summary>
public enum ResidualWiring
{
    /// <summary>x + attn(ln1(x)), then + mlp(ln2(·)): OPT pre-LN, GPT-NeoX with use_parallel_residual false, BLOOM.</summary>
    Sequential,
    /// <summary>x + attn(ln1(x)) + mlp(ln2(x)): GPT-NeoX's default (use_parallel_residual).</summary>
    Parallel,
    /// <summary>h = ln1(x); x + attn(h) + mlp(h): GPT-J, one LayerNorm and no ln2.</summary>
    ParallelOneNorm,
    /// <summary>ln1(x + attn(x)), then ln2(· + mlp(·)): OPT with do_layer_norm_before false (OPT-350M).</summary>
    PostNorm,
    /// <summary>h = ln1(x); a = attn(h) + h; h2 = ln2(a); mlp(h2) + h2: BLOOM's apply_residual_connection_post_layernorm.</summary>
    ResidualFromNorm,
}

/// <summary>
/// A decoder block of the families built on LayerNorm and multi-head attention (modeling_gpt_neox.py GPTNeoXLayer,
/// modeling_opt.py OPTDecoderLayer, modeling_gptj.py GPTJBlock, modeling_bloom.py BloomBlock): the same attention and
/// MLP, wired as <see cref="ResidualWiring"/> says.
/// </summary>
public sealed class ResidualBlock : nn.Module, IDropoutHost
{
#pragma warning disable IDE1006
    public readonly LayerNorm input_norm;
    public readonly FusedQkvAttention attn;
    public readonly LayerNorm? post_norm; // null for GPT-J's single norm
    public readonly Mlp mlp;
#pragma warning restore IDE1006
    readonly ResidualWiring wiring;

    /// <summary>
    /// Only <see cref="Dropouts.Residual"/> is read here: on the attention's and the MLP's outputs before their residual add
    /// (OPT <c>dropout</c>, GPT-NeoX post_attention_dropout/post_mlp_dropout, GPT-J resid_pdrop, BLOOM's dropout_add).
    /// </summary>
    public Dropouts Dropout { get; set; }

    public ResidualBlock(TransformerConfig c, int layer, ResidualWiring wiring, FusedQkvAttention.QkvLayout qkvLayout, PartialRotary? rotary,
        ScalarType? dtype = null) : base(nameof(ResidualBlock))
    {
        this.wiring = wiring;
        input_norm = nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype);
        attn = new FusedQkvAttention(c, layer, qkvLayout, rotary, dtype);
        if (wiring != ResidualWiring.ParallelOneNorm) post_norm = nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype);
        mlp = new Mlp(c, dtype);
        Dropout = c.Dropout;
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, (Tensor, Tensor)? angles, Tensor? mask, KvCache? cache)
    {
        double p = Dropout.Residual;
        Tensor Attn(Tensor h) => Dropouts.Apply(attn.Forward(h, angles, mask, cache), p, training);
        Tensor Mlp(Tensor h) => Dropouts.Apply(mlp.forward(h), p, training);
        switch (wiring)
        {
            case ResidualWiring.Sequential:
                x = x + Attn(input_norm.forward(x));
                return x + Mlp(post_norm!.forward(x));
            case ResidualWiring.Parallel:
                return x + Attn(input_norm.forward(x)) + Mlp(post_norm!.forward(x));
            case ResidualWiring.ParallelOneNorm:
            {
                var h = input_norm.forward(x);
                return x + Attn(h) + Mlp(h);
            }
            case ResidualWiring.PostNorm:
                x = input_norm.forward(x + Attn(x));
                return post_norm!.forward(x + Mlp(x));
            default:
            {
                var h = input_norm.forward(x);
                var a = Attn(h) + h;
                var h2 = post_norm!.forward(a);
                return Mlp(h2) + h2;
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="layers"/> in order, recording each block's input in <paramref name="hiddenStates"/> (HF's
    /// <c>hidden_states</c> before the final norm), and moves the cache past the new tokens. With <paramref name="checkpoint"/>
    /// each block runs under <see cref="LayerCheckpoint"/>. With <paramref name="layerdrop"/> &gt; 0 a block in training mode is
    /// skipped with that probability (OPT's LayerDrop: OPTDecoder.forward records the input, then draws torch.rand([]) per layer).
    /// </summary>
    public static Tensor RunAll(IEnumerable<ResidualBlock> layers, Tensor x, (Tensor, Tensor)? angles, Tensor? mask, KvCache? cache,
        List<Tensor>? hiddenStates, bool checkpoint = false, double layerdrop = 0)
    {
        long t = x.shape[1];
        foreach (var layer in layers)
        {
            hiddenStates?.Add(x);
            if (layerdrop > 0 && layer.training && rand(1).item<float>() < layerdrop) continue;
            x = checkpoint
                ? LayerCheckpoint.Run(layer, x, [angles?.Item1, angles?.Item2, mask], (h, c) => layer.Forward(h, c[0] is null ? null : (c[0]!, c[1]!), c[2], null))
                : DecoderBody.ScopedLayer(() => layer.Forward(x, angles, mask, cache));
        }
        cache?.Advance((int)t);
        return x;
    }
}
