using RlhfSharp.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.Rwkv;

/// <summary>
/// RWKV-4's time mix (modeling_rwkv.py RwkvSelfAttention): key, value and receptance read the input mixed with the previous
/// token's (per-channel <c>time_mix_*</c>), the WKV recurrence (<see cref="Wkv"/>) replaces attention, and the receptance's
/// sigmoid gates it before the output projection. Its projections take LoRA adapters (PEFT's RWKV defaults are
/// <c>key</c>, <c>value</c> and <c>receptance</c>).
/// </summary>
public sealed class RwkvTimeMix : nn.Module, ILoraHost
{
#pragma warning disable IDE1006
    public readonly Parameter time_decay;          // (A): w = −e^{time_decay}
    public readonly Parameter time_first;          // (A): u
    public readonly Parameter time_mix_key;        // (1, 1, H)
    public readonly Parameter time_mix_value;      // (1, 1, H)
    public readonly Parameter time_mix_receptance; // (1, 1, H)
    public readonly Linear key_proj, value_proj, receptance_proj, output_proj; // no biases
#pragma warning restore IDE1006
    readonly LoraSlots lora; // adapters attached after loading (LoraModel.Attach)

    public RwkvTimeMix(TransformerConfig c, ScalarType? dtype = null) : base(nameof(RwkvTimeMix))
    {
        int h = c.HiddenSize, a = c.AttentionHiddenSize;
        var type = dtype ?? ScalarType.Float32;
        time_decay = new Parameter(zeros(a, type));
        time_first = new Parameter(zeros(a, type));
        time_mix_key = new Parameter(zeros([1, 1, h], type));
        time_mix_value = new Parameter(zeros([1, 1, h], type));
        time_mix_receptance = new Parameter(zeros([1, 1, h], type));
        key_proj = nn.Linear(h, a, hasBias: false, dtype: dtype);
        value_proj = nn.Linear(h, a, hasBias: false, dtype: dtype);
        receptance_proj = nn.Linear(h, a, hasBias: false, dtype: dtype);
        output_proj = nn.Linear(a, h, hasBias: false, dtype: dtype);
        lora = new LoraSlots(this, "the time mix", (nameof(key_proj), key_proj), (nameof(value_proj), value_proj), (nameof(receptance_proj), receptance_proj), (nameof(output_proj), output_proj));
        RegisterComponents();
    }

    public void AttachLora(string projection, LoraAdapter adapter) => lora.Attach(projection, adapter);

    /// <summary>The time mix of <paramref name="h"/> = ln1(x), (B, T, H).</summary>
    /// <param name="shift">The previous token's ln1 output (B, H), or null at the start.</param>
    /// <param name="wkv">The WKV sums so far.</param>
    /// <param name="realTokens">(B, T) booleans, or null: pads leave the state as it was (<see cref="TokenShift"/>, <see cref="Wkv"/>).</param>
    /// <param name="outputScale">1, or 2^−(i / rescale_every) at inference: HF divides <c>output.weight</c> by 2^(i / rescale_every)
    /// in eval mode; scaling the product by a power of two gives the same numbers, and scales a LoRA update with it.</param>
    /// <returns>The block's residual update, the last real token's ln1 output and the sums after the new tokens.</returns>
    public (Tensor Output, Tensor Shift, WkvState Wkv) Forward(Tensor h, Tensor? shift, WkvState wkv, Tensor? realTokens, double outputScale)
    {
        var (shifted, last) = TokenShift.Apply(h, shift, realTokens);
        var k = lora.Forward(key_proj, h * time_mix_key + shifted * (1 - time_mix_key));
        var v = lora.Forward(value_proj, h * time_mix_value + shifted * (1 - time_mix_value));
        var r = lora.Forward(receptance_proj, h * time_mix_receptance + shifted * (1 - time_mix_receptance)).sigmoid();
        var (mixed, state) = Wkv.Scan(time_decay, time_first, k, v, wkv, realTokens);
        var output = lora.Forward(output_proj, r * mixed);
        return (outputScale == 1 ? output : output * outputScale, last, state);
    }
}
