using static TorchSharp.torch;

namespace RlhfSharp.Models.T5;

/// <summary>
/// What a T5 decoder keeps between generation steps: per layer, the self-attention keys and values of the decoder
/// tokens so far (buffers allocated once, written in place), and the cross-attention keys and values of the encoder
/// output, computed on the first step and reused. The tensors live outside any dispose scope until the cache is disposed.
/// </summary>
public sealed class T5DecoderCache : IDisposable
{
    readonly KvCache self;
    readonly Tensor?[] crossKeys, crossValues;

    /// <summary>Decoder tokens already in the cache (the position of the next query).</summary>
    public int Length => self.Length;
    public int Capacity => self.Capacity;

    public T5DecoderCache(T5Config config, long batch, int capacity, ScalarType dtype, Device device)
    {
        self = new KvCache(config.NumDecoderLayers, batch, config.NumHeads, config.DKv, capacity, dtype, device);
        crossKeys = new Tensor?[config.NumDecoderLayers];
        crossValues = new Tensor?[config.NumDecoderLayers];
    }

    /// <summary>Writes this step's self-attention keys/values (B, heads, T, d_kv); returns all of them so far.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v) => self.Append(layer, k, v);

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
    public void Advance(int tokens) => self.Advance(tokens);

    public void Dispose()
    {
        self.Dispose();
        foreach (var t in crossKeys.Concat(crossValues)) t?.Dispose();
    }
}
