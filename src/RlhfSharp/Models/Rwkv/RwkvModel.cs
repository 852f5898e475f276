using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.Rwkv;

/// <summary>
/// The body of RWKV-4 (modeling_rwkv.py RwkvModel): token embedding, blocks of time mix and channel mix, <c>ln_out</c>.
/// An RNN: decoding carries a constant-size <see cref="RwkvState"/> (held by the <see cref="KvCache"/> the samplers
/// already pass) instead of keys and values.
/// </summary>
/// <remarks>
/// <para><b>Padding.</b> HF ignores <c>attention_mask</c>, so pads enter the state and a left-padded row differs from the
/// unpadded one. Here a 0 in the mask freezes the state at that step instead (the token shift skips the pad, the WKV sums
/// keep their values): a row computes the same numbers padded or not, left-padded prompts prefill in one batched pass, and
/// the training forward over left-padded rollouts reads the same log-probs the sampler drew from. The outputs at pad
/// positions are not meaningful (as in any padded model). Without a mask every token counts, as in HF.</para>
/// <para><b>Inference rescaling.</b> In eval mode HF divides block i's <c>attention.output</c> and <c>feed_forward.value</c>
/// weights by 2^(i / rescale_every) (in place, once) and halves the residual stream after every rescale_every blocks; in train
/// mode it does neither. This body does the same, keyed on its train/eval flag, by scaling those products — the same
/// numbers, and the stored weights never change. A LoRA update on <c>feed_forward.value</c> is scaled with its base (PEFT on
/// HF's in-place division would leave the update unscaled, a model that differs between train and eval).</para>
/// </remarks>
public sealed class RwkvModel : DecoderBody
{
#pragma warning disable IDE1006
    public readonly Embedding embed_tokens;
    public readonly ModuleList<RwkvBlock> layers;
    public readonly LayerNorm norm; // ln_out
#pragma warning restore IDE1006

    /// <summary>ln_out is an <c>nn.LayerNorm(hidden_size)</c>: PyTorch's default eps, not <c>layer_norm_epsilon</c>.</summary>
    public const double OutputNormEps = 1e-5;

    public override Embedding Embeddings => embed_tokens;

    public RwkvModel(TransformerConfig c, ScalarType? dtype = null) : base(nameof(RwkvModel), c)
    {
        embed_tokens = LayerInit.Embedding(c.VocabSize, c.HiddenSize, dtype);
        layers = new ModuleList<RwkvBlock>(Enumerable.Range(0, c.NumLayers).Select(i => new RwkvBlock(c, i, dtype)).ToArray());
        norm = nn.LayerNorm(c.HiddenSize, OutputNormEps, dtype: dtype);
        RegisterComponents();
    }

    /// <inheritdoc/>
    /// <remarks>
    /// RWKV has no positions: <paramref name="positionIds"/> is ignored. <paramref name="hiddenStates"/> receives HF's
    /// entries: each block's output (after any halving) and then ln_out's, no embedding. A <paramref name="cache"/> holds
    /// the recurrent state (<see cref="KvCache.Recurrent"/>); without one every row starts from zeros.
    /// </remarks>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        KvCache? cache = null, List<Tensor>? hiddenStates = null)
    {
        long t = inputIds.shape[1];
        var state = cache is null ? null
            : cache.Recurrent ?? throw new ArgumentException("an RWKV model decodes with a recurrent state: build the cache from the model's config");
        // The mask covers past + new tokens; the new tokens' columns are its tail.
        var realTokens = attentionMask?.narrow(1, attentionMask.shape[1] - t, t).ne(0);
        bool rescale = !training && Config.RescaleEvery > 0;
        var x = embed_tokens.forward(inputIds);
        bool checkpoint = Checkpointing(cache);
        for (int i = 0; i < layers.Count; i++)
        {
            double scale = rescale ? Math.Pow(2, -(i / Config.RescaleEvery)) : 1;
            var layer = layers[i];
            x = checkpoint
                ? LayerCheckpoint.Run(layer, x, [realTokens], (h, c) => layer.Forward(h, c[0], null, scale))
                : layer.Forward(x, realTokens, state, scale);
            if (rescale && (i + 1) % Config.RescaleEvery == 0) x = x / 2;
            hiddenStates?.Add(x);
        }
        x = norm.forward(x);
        hiddenStates?.Add(x);
        cache?.Advance((int)t);
        return x;
    }
}
