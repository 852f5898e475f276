using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.T5;

/// <summary>
/// The encoder or the decoder of T5 (modeling_t5.py <c>T5Stack</c>): blocks and a final RMS norm. The token embedding
/// is the model's <c>shared</c> matrix, applied by <see cref="T5ForConditionalGeneration"/>, so it is not a parameter
/// here (HF's <c>encoder.embed_tokens</c> / <c>decoder.embed_tokens</c> are tied to <c>shared</c> and never saved).
/// </summary>
public sealed class T5Stack : nn.Module, IDropoutHost
{
#pragma warning disable IDE1006 // HF parameter names
    public readonly ModuleList<T5Block> block;
    public readonly RmsNorm final_layer_norm;
#pragma warning restore IDE1006
    readonly T5Config config;
    readonly bool isDecoder;

    /// <summary>
    /// <see cref="Dropouts.Embedding"/> on the embedded input and <see cref="Dropouts.Residual"/> on each sub-layer's output
    /// before its residual add and on the normed output (T5Stack.dropout, T5Layer*.dropout).
    /// </summary>
    public Dropouts Dropout { get; set; }

    public T5Stack(T5Config c, bool isDecoder, ScalarType? dtype = null) : base(nameof(T5Stack))
    {
        config = c;
        this.isDecoder = isDecoder;
        block = new ModuleList<T5Block>();
        int n = isDecoder ? c.NumDecoderLayers : c.NumLayers;
        for (int i = 0; i < n; i++) block.Add(new T5Block(c, isDecoder, hasRelativeAttentionBias: i == 0, dtype));
        final_layer_norm = new RmsNorm(c.DModel, c.LayerNormEpsilon, dtype);
        Dropout = c.Dropout;
        RegisterComponents();
    }

    /// <param name="hidden">embedded tokens (B, T, d_model)</param>
    /// <param name="selfMask">additive self-attention mask (B, 1, T or 1, Tk), already causal for the decoder</param>
    /// <param name="encoderStates">the encoder's output (B, Te, d_model); decoder only (unused once the cache has it)</param>
    /// <param name="crossMask">additive mask over encoder positions (B, 1, 1, Te); decoder only</param>
    /// <param name="cache">decoder cache, or null</param>
    /// <param name="hiddenStates">receives HF's <c>hidden_states</c>: each layer's input, then the normed output</param>
    public Tensor Forward(Tensor hidden, Tensor selfMask, Tensor? encoderStates = null, Tensor? crossMask = null,
        T5DecoderCache? cache = null, List<Tensor>? hiddenStates = null)
    {
        long t = hidden.shape[1];
        double p = Dropout.Residual;
        hidden = Dropouts.Apply(hidden, Dropout.Embedding, training);
        long offset = cache?.Length ?? 0;
        // One position bias for the whole stack, from the first layer's table (modeling_t5.py: computed in layer 0,
        // passed on to the others), with the mask folded in as HF does.
        var buckets = T5RelativePosition.Buckets(offset, t, offset + t, bidirectional: !isDecoder,
            config.RelativeAttentionNumBuckets, config.RelativeAttentionMaxDistance, hidden.device);
        var bias = block[0].Self.SelfAttention.PositionBias(buckets) + selfMask;
        for (int i = 0; i < block.Count; i++)
        {
            hiddenStates?.Add(hidden);
            var b = block[i];
            var self = b.Self;
            var normed = self.layer_norm.forward(hidden);
            var k = self.SelfAttention.Keys(normed);
            var v = self.SelfAttention.Values(normed);
            if (cache is not null) (k, v) = cache.Append(i, k, v);
            hidden = hidden + Dropouts.Apply(self.SelfAttention.Forward(normed, k, v, bias), p, training);
            if (b.Cross is { } cross)
            {
                var attention = cross.EncDecAttention;
                (Tensor, Tensor) Compute() => (attention.Keys(encoderStates!), attention.Values(encoderStates!));
                var (ck, cv) = cache is not null ? cache.Cross(i, Compute) : Compute();
                hidden = hidden + Dropouts.Apply(attention.Forward(cross.layer_norm.forward(hidden), ck, cv, crossMask!), p, training);
            }
            var ff = b.FeedForward;
            hidden = hidden + Dropouts.Apply(ff.DenseReluDense.forward(ff.layer_norm.forward(hidden)), p, training);
        }
        cache?.Advance((int)t);
        hidden = Dropouts.Apply(final_layer_norm.forward(hidden), p, training);
        hiddenStates?.Add(hidden);
        return hidden;
    }
}
