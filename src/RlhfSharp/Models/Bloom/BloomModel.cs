using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.Bloom;

/// <summary>
/// The body of BLOOM (modeling_bloom.py BloomModel): token embedding and its LayerNorm, blocks whose attention adds
/// ALiBi (Press et al. 2022) instead of position embeddings, final LayerNorm.
/// </summary>
public sealed class BloomModel : DecoderBody
{
#pragma warning disable IDE1006
    public readonly Embedding embed_tokens;
    public readonly LayerNorm embed_norm;
    public readonly ModuleList<ResidualBlock> layers;
    public readonly LayerNorm norm;
#pragma warning restore IDE1006
    readonly float[] slopes;

    public override Embedding Embeddings => embed_tokens;

    public BloomModel(TransformerConfig c, ScalarType? dtype = null) : base(nameof(BloomModel), c)
    {
        slopes = Slopes(c.NumHeads);
        embed_tokens = LayerInit.Embedding(c.VocabSize, c.HiddenSize, dtype);
        embed_norm = nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype);
        var wiring = c.ResidualFromNorm ? ResidualWiring.ResidualFromNorm : ResidualWiring.Sequential;
        layers = new ModuleList<ResidualBlock>(Enumerable.Range(0, c.NumLayers)
            .Select(i => new ResidualBlock(c, i, wiring, FusedQkvAttention.QkvLayout.PerHead, null, dtype)).ToArray());
        norm = nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>
    /// ALiBi's head slopes (modeling_bloom.py <c>build_alibi_tensor</c>): with P the largest power of two ≤ heads,
    /// 2^(−8k/P) for k = 1..P, then 2^(−4k/P) for odd k for the heads beyond P. As HF: the base rounded to float32 and
    /// raised to the integer powers in float32; from P = 16 on (BLOOM-560M's 16 heads) that base is inexact and the
    /// float32 powers differ from the rounded exact values by a few ULP, which ALiBi multiplies by the key position.
    /// </summary>
    public static float[] Slopes(int heads)
    {
        int p = 1;
        while (p * 2 <= heads) p *= 2;
        using var _ = NewDisposeScope();
        Tensor Powers(double exponent, int first, int count, int stride) =>
            pow(tensor((float)Math.Pow(2, exponent), float32), arange(first, first + stride * count, stride, int32));
        var slopes = Powers(-8.0 / p, 1, p, 1);
        if (heads > p) slopes = cat([slopes, Powers(-4.0 / p, 1, heads - p, 2)]);
        return slopes.data<float>().ToArray();
    }

    /// <inheritdoc/>
    /// <remarks>BLOOM has no position_ids input: ALiBi reads key positions from the mask and <paramref name="positionIds"/> is ignored.</remarks>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        KvCache? cache = null, List<Tensor>? hiddenStates = null)
    {
        var (t, past, device) = NewTokens(inputIds, cache);
        var x = embed_norm.forward(embed_tokens.forward(inputIds));
        // score += slope_h · key_pos with key_pos = (cumsum(mask) − 1)·mask: softmax is shift-invariant per row, so this
        // is −slope·(i − j) on the real tokens, left padding included.
        Tensor keyPos;
        if (attentionMask is null) keyPos = arange(past + t, dtype: float32, device: device).unsqueeze(0);
        else
        {
            var m = attentionMask.to(int64);
            keyPos = ((m.cumsum(1) - 1) * m).to(float32);
        }
        var alibi = tensor(slopes, device: device).view(1, -1, 1, 1) * keyPos.unsqueeze(1).unsqueeze(1); // (B or 1, heads, 1, Tk)
        var mask = Transformer.AdditiveMask(attentionMask, past, t, x.dtype, device) + alibi.to(x.dtype); // (B or 1, heads, T, Tk)
        x = ResidualBlock.RunAll(layers, x, null, mask, cache, hiddenStates, Checkpointing(cache));
        x = norm.forward(x);
        hiddenStates?.Add(x);
        return x;
    }
}
