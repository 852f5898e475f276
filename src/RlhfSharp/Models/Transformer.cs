using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// The decoder-only transformer body shared by every head: embeddings, pre-norm blocks, final norm.
/// One class, driven by <see cref="TransformerConfig"/>, covers GPT-2, LLaMA, Mistral and Qwen2.
/// </summary>
public sealed class Transformer : DecoderBody, IDropoutHost
{
#pragma warning disable IDE1006
    public readonly Embedding embed_tokens;
    public readonly Embedding? embed_positions; // GPT-2's learned positions
    public readonly ModuleList<DecoderLayer> layers;
    public readonly nn.Module<Tensor, Tensor> norm;
#pragma warning restore IDE1006

    public override Embedding Embeddings => embed_tokens;

    /// <summary>Only <see cref="Dropouts.Embedding"/> is read here: GPT-2's embd_pdrop on wte + wpe (GPT2Model.drop).</summary>
    public Dropouts Dropout { get; set; }

    readonly RouterRecord? router;
    public override RouterRecord? Router => router;

    /// <param name="c">The architecture.</param>
    /// <param name="dtype">Element type of every parameter (default: float32), so a bf16 model never exists in float32 first.</param>
    public Transformer(TransformerConfig c, ScalarType? dtype = null) : base(nameof(Transformer), c)
    {
        embed_tokens = LayerInit.Embedding(c.VocabSize, c.HiddenSize, dtype);
        if (c.Family == ModelFamily.Gpt2) embed_positions = LayerInit.Embedding(c.MaxPositions, c.HiddenSize, dtype);
        layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(i => new DecoderLayer(c, i, dtype)).ToArray());
        norm = Norm(c, dtype);
        Dropout = c.Dropout;
        RegisterComponents();
        var sparse = layers.Select(l => l.mlp).OfType<SparseMoe>().ToArray();
        if (sparse.Length > 0)
        {
            router = new RouterRecord(sparse.Length, c.Moe!.NumExperts);
            for (int i = 0; i < sparse.Length; i++) (sparse[i].Record, sparse[i].RecordIndex) = (router, i);
        }
        // A non-persistent buffer: it follows the module across devices and never enters a checkpoint.
        // Cast like the rest of the module (as module.to(dtype) did before models were built in their dtype), so results stay bit-identical.
        register_buffer("inv_freq", tensor(RopeScaling.InverseFrequencies(c.HeadDim, c.RopeTheta, c.RopeScaling).Select(f => (float)f).ToArray()).to(dtype ?? float32), persistent: false);
        if (c.RopeScaling is { Type: "longrope" } lr)
            register_buffer("inv_freq_long", tensor(RopeScaling.LongRopeFrequencies(c.HeadDim, c.RopeTheta, lr, longFactors: true).Select(f => (float)f).ToArray()).to(dtype ?? float32), persistent: false);
    }

    internal static nn.Module<Tensor, Tensor> Norm(TransformerConfig c, ScalarType? dtype = null) => c.Family == ModelFamily.Gpt2
        ? nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype)
        : new RmsNorm(c.HiddenSize, c.NormEps, dtype, plusOne: c.GemmaNorms);

    /// <summary>Runs the body. Returns the final (normed) hidden states (B, T, hidden).</summary>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        KvCache? cache = null, List<Tensor>? hiddenStates = null)
    {
        var (t, past, device) = NewTokens(inputIds, cache);
        positionIds ??= CountedPositions(past, t, device);

        var x = embed_tokens.forward(inputIds);
        if (embed_positions is not null) x = x + embed_positions.forward(positionIds);
        // Gemma: the normalizer is a tensor of the activations' dtype (GemmaModel.forward), so bf16 rounds sqrt(hidden) first.
        if (Config.GemmaNorms) x = x * tensor(Math.Sqrt(Config.HiddenSize), dtype: x.dtype, device: device);
        x = Dropouts.Apply(x, Dropout.Embedding, training);

        (Tensor, Tensor)? rope = null;
        if (Config.Family == ModelFamily.Llama)
        {
            // HF computes the angles in float32 and casts cos/sin to the activations' dtype.
            var invFreq = get_buffer("inv_freq")!;
            // Phi-3 longrope: the long factors once the current length (max position + 1, as HF computes it) passes the original context.
            if (Config.RopeScaling is { Type: "longrope" } lr && positionIds.max().item<long>() + 1 > lr.OriginalMaxPositionEmbeddings)
                invFreq = get_buffer("inv_freq_long")!;
            var freqs = positionIds.to(float32).unsqueeze(-1) * invFreq.to(float32); // (B, T, hd/2)
            var emb = cat([freqs, freqs], -1).unsqueeze(2);           // (B, T, 1, hd)
            if (Config.RopeScaling is { Type: "longrope" } scaled && scaled.LongRopeAttentionFactor != 1.0)
                rope = ((emb.cos() * scaled.LongRopeAttentionFactor).to(x.dtype), (emb.sin() * scaled.LongRopeAttentionFactor).to(x.dtype));
            else
                rope = (emb.cos().to(x.dtype), emb.sin().to(x.dtype));
        }

        Tensor? mask = null;
        bool grouped = Config.NumHeads != Config.NumKvHeads;
        if (attentionMask is not null || cache is not null || grouped || Config.ExplicitAttentionScores)
        {
            mask = AdditiveMask(attentionMask, past, t, x.dtype, device);
            // Grouped-query attention folds the query heads of a KV head into the query axis (see Attention): repeat once here, not per layer.
            if (grouped) mask = mask.repeat(1, 1, Config.NumHeads / Config.NumKvHeads, 1);
        }
        // The sliding window (Mistral, Qwen2, Gemma 2's even layers, …) changes the mask only once the keys outnumber it.
        Tensor? windowMask = null;
        if (Config.SlidingWindow is int window && past + t > window)
        {
            windowMask = AdditiveMask(attentionMask, past, t, x.dtype, device, window);
            if (grouped) windowMask = windowMask.repeat(1, 1, Config.NumHeads / Config.NumKvHeads, 1);
        }

        // HF's load-balancing loss leaves padding out by the 2-D attention mask of the forward (load_balancing_loss_func).
        if (router is not null && training && is_grad_enabled()) router.Mask = cache is null ? attentionMask?.reshape(-1) : null;
        bool checkpoint = Checkpointing(cache);
        for (int i = 0; i < layers.Count; i++)
        {
            hiddenStates?.Add(x);
            var (layer, layerMask) = (layers[i], windowMask is not null && Config.WindowedLayers(i) ? windowMask : mask);
            x = checkpoint
                ? LayerCheckpoint.Run(layer, x, [rope?.Item1, rope?.Item2, layerMask], (h, c) => layer.Forward(h, c[0] is null ? null : (c[0]!, c[1]!), c[2], null))
                : router is null ? ScopedLayer(() => layer.Forward(x, rope, layerMask, cache)) : layer.Forward(x, rope, layerMask, cache);
        }
        cache?.Advance((int)t);
        x = norm.forward(x);
        hiddenStates?.Add(x);
        return x;
    }

    /// <summary>
    /// (B or 1, 1, T, past+T): 0 where query i may see key j (j not after i, key not padding), else the dtype's
    /// lowest finite value. Finite, as HF does, so a query row that sees nothing (a pad query) averages
    /// instead of turning into NaN and leaking into later layers.
    /// </summary>
    public static Tensor AdditiveMask(Tensor? attentionMask, int past, long t, ScalarType dtype, Device device) =>
        AdditiveMask(attentionMask, past, t, dtype, device, null);

    /// <summary>
    /// As <see cref="AdditiveMask(Tensor?, int, long, ScalarType, Device)"/>, and with a sliding window a query at column i
    /// also sees key j only if i − j &lt; <paramref name="window"/>: columns, padding included, as HF's
    /// <c>_update_causal_mask</c> counts them (MistralModel, v4.44), so a left-padded row sees what the unpadded one does.
    /// </summary>
    public static Tensor AdditiveMask(Tensor? attentionMask, int past, long t, ScalarType dtype, Device device, int? window)
    {
        long keys = past + t;
        var queryPos = arange(past, past + t, dtype: int64, device: device).unsqueeze(1); // (T, 1)
        var keyPos = arange(0, keys, dtype: int64, device: device).unsqueeze(0);         // (1, Tk)
        var visible = keyPos.le(queryPos);
        if (window is int w) visible = visible.logical_and(keyPos.gt(queryPos - w));
        var allowed = visible.unsqueeze(0).unsqueeze(0);                                 // (1, 1, T, Tk)
        if (attentionMask is not null)
        {
            if (attentionMask.shape[1] != keys)
                throw new ArgumentException($"attention mask covers {attentionMask.shape[1]} positions, expected {keys} (cache {past} + input {t}).");
            allowed = allowed.logical_and(attentionMask.to(@bool).unsqueeze(1).unsqueeze(1));
        }
        // The dtype's lowest finite value (torch.finfo(dtype).min): float.MinValue overflows bf16 and fp16.
        double lowest = dtype == float16 ? -65504.0 : dtype == bfloat16 ? -3.3895313892515355e38 : dtype == float64 ? double.MinValue : float.MinValue;
        return zeros(allowed.shape, dtype, device).masked_fill(allowed.logical_not(), lowest);
    }

    /// <summary>
    /// Positions the way HF <c>generate</c> derives them from a left-padded mask: cumsum(mask) − 1, and 1 at
    /// padding (any value works there; HF uses 1).
    /// </summary>
    public static Tensor PositionsFromMask(Tensor attentionMask)
    {
        var m = attentionMask.to(int64);
        return (m.cumsum(1) - 1).masked_fill(m.eq(0), 1);
    }
}
