using RlhfSharp.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.Rwkv;

/// <summary>
/// RWKV-4's channel mix (modeling_rwkv.py RwkvFeedForward), its feed-forward: value(relu(key(x_k))²) gated by
/// sigmoid(receptance(x_r)), where x_k and x_r mix the input with the previous token's. Its projections take LoRA adapters.
/// </summary>
public sealed class RwkvChannelMix : nn.Module, ILoraHost
{
#pragma warning disable IDE1006
    public readonly Parameter time_mix_key;        // (1, 1, H)
    public readonly Parameter time_mix_receptance; // (1, 1, H)
    public readonly Linear key_proj;               // H → intermediate
    public readonly Linear receptance_proj;        // H → H
    public readonly Linear value_proj;             // intermediate → H
#pragma warning restore IDE1006
    readonly LoraSlots lora; // adapters attached after loading (LoraModel.Attach)

    public RwkvChannelMix(TransformerConfig c, ScalarType? dtype = null) : base(nameof(RwkvChannelMix))
    {
        int h = c.HiddenSize, i = c.IntermediateSize;
        var type = dtype ?? ScalarType.Float32;
        time_mix_key = new Parameter(zeros([1, 1, h], type));
        time_mix_receptance = new Parameter(zeros([1, 1, h], type));
        key_proj = nn.Linear(h, i, hasBias: false, dtype: dtype);
        receptance_proj = nn.Linear(h, h, hasBias: false, dtype: dtype);
        value_proj = nn.Linear(i, h, hasBias: false, dtype: dtype);
        lora = new LoraSlots(this, "the channel mix", (nameof(key_proj), key_proj), (nameof(value_proj), value_proj), (nameof(receptance_proj), receptance_proj));
        RegisterComponents();
    }

    public void AttachLora(string projection, LoraAdapter adapter) => lora.Attach(projection, adapter);

    /// <summary>The channel mix of <paramref name="h"/> = ln2(x), (B, T, H).</summary>
    /// <param name="shift">The previous token's ln2 output (B, H), or null at the start.</param>
    /// <param name="realTokens">(B, T) booleans, or null (<see cref="TokenShift"/>).</param>
    /// <param name="outputScale">1, or 2^−(i / rescale_every) at inference, for HF's division of <c>value.weight</c> (see <see cref="RwkvTimeMix.Forward"/>).</param>
    /// <returns>The block's residual update and the last real token's ln2 output.</returns>
    public (Tensor Output, Tensor Shift) Forward(Tensor h, Tensor? shift, Tensor? realTokens, double outputScale)
    {
        var (shifted, last) = TokenShift.Apply(h, shift, realTokens);
        var k = lora.Forward(key_proj, h * time_mix_key + shifted * (1 - time_mix_key)).relu().square();
        var v = lora.Forward(value_proj, k);
        if (outputScale != 1) v = v * outputScale;
        var r = lora.Forward(receptance_proj, h * time_mix_receptance + shifted * (1 - time_mix_receptance)).sigmoid();
        return (r * v, last);
    }
}
