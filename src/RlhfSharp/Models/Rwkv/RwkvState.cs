using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models.Rwkv;

/// <summary>
/// RWKV's recurrent state: what decoding carries from token to token instead of a KV cache, constant in size whatever the
/// length. Per block and per row: the last real token's <c>ln2</c> and <c>ln1</c> outputs (the channel mix's and time mix's
/// token shift) and the WKV sums — numerator a, denominator b and their running exponent p, so the true sums are a·e^p and
/// b·e^p (modeling_rwkv.py <c>rwkv_linear_attention_cpu</c>). The buffers are allocated once and written in place, outside
/// any dispose scope; the owning <see cref="KvCache"/> disposes them.
/// </summary>
public sealed class RwkvState : IDisposable
{
    /// <summary>The starting exponent of HF's stateful path (RwkvModel.forward: <c>state[4] -= 1e30</c>); e^(p−q) is 0 for any real q.</summary>
    public const float InitialExponent = -1e30f;

    readonly Tensor[] channelShift, timeShift, numerator, denominator, exponent;

    /// <param name="dtype">The model's dtype: the token-shift halves are in it; the WKV sums are float32, as HF keeps them.</param>
    public RwkvState(TransformerConfig c, long batch, ScalarType dtype, Device device)
    {
        int layers = c.NumLayers;
        channelShift = new Tensor[layers]; timeShift = new Tensor[layers];
        numerator = new Tensor[layers]; denominator = new Tensor[layers]; exponent = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            channelShift[i] = zeros([batch, c.HiddenSize], dtype, device).DetachFromDisposeScope();
            timeShift[i] = zeros([batch, c.HiddenSize], dtype, device).DetachFromDisposeScope();
            numerator[i] = zeros([batch, c.AttentionHiddenSize], ScalarType.Float32, device).DetachFromDisposeScope();
            denominator[i] = zeros([batch, c.AttentionHiddenSize], ScalarType.Float32, device).DetachFromDisposeScope();
            exponent[i] = full([batch, c.AttentionHiddenSize], InitialExponent, ScalarType.Float32, device).DetachFromDisposeScope();
        }
    }

    /// <summary>Block <paramref name="layer"/>'s time-mix part: the previous token's <c>ln1</c> output and the WKV sums.</summary>
    public (Tensor Shift, WkvState Wkv) TimeMix(int layer) => (timeShift[layer], new WkvState(numerator[layer], denominator[layer], exponent[layer]));

    /// <summary>Block <paramref name="layer"/>'s channel-mix part: the previous token's <c>ln2</c> output.</summary>
    public Tensor ChannelMix(int layer) => channelShift[layer];

    /// <summary>Stores block <paramref name="layer"/>'s time-mix state after the new tokens.</summary>
    public void SetTimeMix(int layer, Tensor shift, WkvState wkv)
    {
        using var _ = no_grad();
        timeShift[layer].copy_(shift);
        numerator[layer].copy_(wkv.Numerator);
        denominator[layer].copy_(wkv.Denominator);
        exponent[layer].copy_(wkv.Exponent);
    }

    /// <summary>Stores block <paramref name="layer"/>'s channel-mix shift after the new tokens.</summary>
    public void SetChannelMix(int layer, Tensor shift)
    {
        using var _ = no_grad();
        channelShift[layer].copy_(shift);
    }

    /// <summary>
    /// The state in HF's layout (RwkvOutput.state): five tensors (B, hidden, layers), index [:, :, i] for block i — the
    /// channel-mix shift, the time-mix shift, the numerator, the denominator and the exponent.
    /// </summary>
    public Tensor[] ToHfLayout() => [stack(channelShift, 2), stack(timeShift, 2), stack(numerator, 2), stack(denominator, 2), stack(exponent, 2)];

    public void Dispose()
    {
        foreach (var set in new[] { channelShift, timeShift, numerator, denominator, exponent })
            foreach (var t in set) t.Dispose();
    }
}
