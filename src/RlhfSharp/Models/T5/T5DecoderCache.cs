using static TorchSharp.torch;

namespace RlhfSharp.Models.T5;

/// <summary>
/// What a T5 decoder keeps between generation steps: per layer, the self-attention keys and values of the decoder
/// tokens so far (buffers allocated once, written in place), and the cross-attention keys and values of the encoder
/// output, computed on the first step and reused. The tensors live outside any dispose scope until the cache is disposed.
/// </summary>
public sealed class T5DecoderCache : IDisposable
{
    readonly Tensor[] keys, values;
    readonly Tensor?[] crossKeys, crossValues;

    /// <summary>Decoder tokens already in the cache (the position of the next query).</summary>
    public int Length { get; private set; }
    public int Capacity { get; }

    public T5DecoderCache(T5Config config, long batch, int capacity, ScalarType dtype, Device device)
    {
        Capacity = capacity;
        int n = config.NumDecoderLayers;
        keys = new Tensor[n]; values = new Tensor[n];
        crossKeys = new Tensor?[n]; crossValues = new Tensor?[n];
        for (int i = 0; i < n; i++)
        {
            keys[i] = zeros([batch, config.NumHeads, capacity, config.DKv], dtype, device).DetachFromDisposeScope();
            values[i] = zeros([batch, config.NumHeads, capacity, config.DKv], dtype, device).DetachFromDisposeScope();
        }
    }

    /// <summary>Writes this step's self-attention keys/values (B, heads, T, d_kv); returns all of them so far.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        long t = k.shape[2];
        if (Length + t > Capacity) throw new RlhfException($"T5 decoder cache capacity {Capacity} exceeded (needs {Length + t}).");
        keys[layer].narrow(2, Length, t).copy_(k);
        values[layer].narrow(2, Length, t).copy_(v);
        return (keys[layer].narrow(2, 0, Length + t), values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>The layer's cross-attention keys/values, computed by <paramref name="compute"/> on first use only.</summary>
    public (Tensor Keys, Tensor Values) Cross(int layer, Func<(Tensor, Tensor)> compute)
    {
        if (crossKeys[layer] is null)
        {
            var (k, v) = compute();
            crossKeys[layer] = k.DetachFromDisposeScope();
            crossValues[layer] = v.DetachFromDisposeScope();
        }
        return (crossKeys[layer]!, crossValues[layer]!);
    }

    /// <summary>Called once per decoder forward, after every layer has appended.</summary>
    public void Advance(int tokens) => Length += tokens;

    public void Dispose()
    {
        foreach (var t in keys.Concat(values)) t.Dispose();
        foreach (var t in crossKeys.Concat(crossValues)) t?.Dispose();
    }
}
