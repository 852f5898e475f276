using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.Rwkv;

/// <summary>
/// One RWKV-4 block (modeling_rwkv.py RwkvBlock): x += time_mix(ln1(x)), then x += channel_mix(ln2(x)); block 0 first
/// normalises the embedding with <c>pre_ln</c>. Reads and writes its slice of the recurrent state when decoding.
/// </summary>
public sealed class RwkvBlock : nn.Module
{
#pragma warning disable IDE1006
    public readonly LayerNorm? pre_ln; // block 0 only
    public readonly LayerNorm ln1, ln2;
    public readonly RwkvTimeMix attn;
    public readonly RwkvChannelMix ffn;
#pragma warning restore IDE1006
    readonly int layer;

    public RwkvBlock(TransformerConfig c, int layer, ScalarType? dtype = null) : base(nameof(RwkvBlock))
    {
        this.layer = layer;
        if (layer == 0) pre_ln = nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype);
        ln1 = nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype);
        ln2 = nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype);
        attn = new RwkvTimeMix(c, dtype);
        ffn = new RwkvChannelMix(c, dtype);
        RegisterComponents();
    }

    /// <param name="x">(B, T, H) residual stream.</param>
    /// <param name="realTokens">(B, T) booleans or null: padding steps leave the state untouched.</param>
    /// <param name="state">The recurrent state to read and advance, or null (a fresh start, nothing kept).</param>
    /// <param name="outputScale">Inference rescaling of the two output projections (<see cref="RwkvModel"/>).</param>
    public Tensor Forward(Tensor x, Tensor? realTokens, RwkvState? state, double outputScale)
    {
        if (pre_ln is not null) x = pre_ln.forward(x);
        var h = ln1.forward(x);
        Tensor? timeShift = null;
        WkvState wkv;
        if (state is null) wkv = Wkv.Empty(h.shape[0], attn.time_decay.shape[0], h.device);
        else (timeShift, wkv) = state.TimeMix(layer);
        var (attention, lastH, newWkv) = attn.Forward(h, timeShift, wkv, realTokens, outputScale);
        state?.SetTimeMix(layer, lastH, newWkv);
        x = x + attention;

        var h2 = ln2.forward(x);
        var (feedForward, lastH2) = ffn.Forward(h2, state?.ChannelMix(layer), realTokens, outputScale);
        state?.SetChannelMix(layer, lastH2);
        return x + feedForward;
    }
}
