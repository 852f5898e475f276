using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// Keys and values of every layer for the tokens seen so far, in buffers allocated once for the longest
/// sequence so decoding writes in place instead of concatenating (O(T) per step). The buffers live outside
/// any dispose scope: the cache owns them until it is disposed. For RWKV, an RNN, the cache holds its recurrent state
/// (<see cref="Recurrent"/>) instead, so every sampler decodes any family through the same object.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly Tensor[] keys;
    readonly Tensor[] values;

    /// <summary>Tokens already in the cache (the position of the next query's first token).</summary>
    public int Length { get; private set; }
    public int Capacity { get; }

    /// <summary>RWKV's recurrent state (constant in size), or null for the attention families.</summary>
    public Rwkv.RwkvState? Recurrent { get; }

    public KvCache(TransformerConfig config, long batch, int capacity, ScalarType dtype, Device device)
        : this(config.Family == ModelFamily.Rwkv ? 0 : config.NumLayers, batch, config.NumKvHeads, config.HeadDim, capacity, dtype, device)
    {
        if (config.Family == ModelFamily.Rwkv) Recurrent = new Rwkv.RwkvState(config, batch, dtype, device);
    }

    /// <summary>A cache of <paramref name="layers"/> layers of (batch, heads, capacity, headDim) keys and values: any
    /// decoder's self-attention (the T5 decoder's too, <see cref="T5.T5DecoderCache"/>).</summary>
    public KvCache(int layers, long batch, int heads, int headDim, int capacity, ScalarType dtype, Device device)
    {
        Capacity = capacity;
        keys = new Tensor[layers];
        values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            keys[i] = zeros([batch, heads, capacity, headDim], dtype, device).DetachFromDisposeScope();
            values[i] = zeros([batch, heads, capacity, headDim], dtype, device).DetachFromDisposeScope();
        }
    }

    /// <summary>Writes this step's keys/values (B, kvHeads, T, hd) for one layer; returns all of them so far.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        long t = k.shape[2];
        if (Length + t > Capacity) throw new RlhfException($"KV cache capacity {Capacity} exceeded (needs {Length + t}).");
        keys[layer].narrow(2, Length, t).copy_(k);
        values[layer].narrow(2, Length, t).copy_(v);
        return (keys[layer].narrow(2, 0, Length + t), values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>Called once per forward, after every layer has appended, to move past the new tokens.</summary>
    public void Advance(int tokens) => Length += tokens;

    public void Dispose()
    {
        Recurrent?.Dispose();
        foreach (var t in keys) t.Dispose();
        foreach (var t in values) t.Dispose();
    }
}
