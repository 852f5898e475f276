using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// The body of a decoder-only language model: token ids in, final hidden states out. Every head (<see cref="CausalLM"/>,
/// <see cref="ScoreModel"/>, a value head) sits on one, so a model family is one body class plus its weight map
/// (<see cref="Checkpoints.HfWeightMap"/>), as <c>transformers</c> has one <c>*Model</c> per family under its heads.
/// </summary>
public abstract class DecoderBody : nn.Module
{
    protected DecoderBody(string name, TransformerConfig config) : base(name) => Config = config;

    public TransformerConfig Config { get; }

    /// <summary>The LoRA adapters attached to the projections (<see cref="Lora.LoraModel.Attach(DecoderBody, Lora.LoraConfig, bool)"/>), or null.</summary>
    public Lora.LoraConfig? Lora { get; internal set; }

    /// <summary>The token embedding: a tied LM head multiplies by its weight, and its device and dtype are the model's.</summary>
    public abstract Embedding Embeddings { get; }

    /// <summary>The router logits and expert load of a mixture-of-experts body's training forwards; null for a dense body.</summary>
    public virtual RouterRecord? Router => null;

    /// <summary>
    /// Whether a training forward (training mode, gradients on, no cache) runs each decoder layer under
    /// <see cref="LayerCheckpoint"/>, keeping only its input for the backward; set by <see cref="LayerCheckpoint.Enable"/>.
    /// </summary>
    public bool CheckpointLayers { get; internal set; }

    /// <summary>True when this forward checkpoints its layers (<see cref="CheckpointLayers"/>, as HF's <c>gradient_checkpointing and self.training</c>).</summary>
    protected bool Checkpointing(KvCache? cache) => CheckpointLayers && training && is_grad_enabled() && cache is null;

    /// <summary>
    /// Runs one decoder layer in its own dispose scope and keeps only its output. TorchSharp frees a tensor when its handle
    /// is disposed, so without this every intermediate of every layer (norms, q/k/v, rotary pieces, attention scores, the
    /// MLP's three widths) stays alive until the caller's scope ends: about 17,000 floats per token and layer, 2 GB for
    /// one 8 × 128-token forward of SmolLM2-135M. What the backward needs stays alive through the autograd graph's own
    /// references (as in PyTorch, where Python drops the intermediates as the forward goes), so the numbers are the same.
    /// Not for a mixture-of-experts layer, whose router logits outlive the layer in <see cref="RouterRecord"/>.
    /// </summary>
    internal static Tensor ScopedLayer(Func<Tensor> layer)
    {
        using var scope = NewDisposeScope();
        return layer().MoveToOuterDisposeScope();
    }

    /// <summary>Width of the hidden states <see cref="Forward"/> returns, the input of every head.</summary>
    public virtual int OutputSize => Config.HiddenSize;

    /// <summary>Final hidden states (B, T, <see cref="OutputSize"/>).</summary>
    /// <param name="inputIds">(B, T) token ids.</param>
    /// <param name="attentionMask">(B, past + T): 1 for real tokens, 0 for padding; null means all real.</param>
    /// <param name="positionIds">(B, T); null means past..past+T-1 for every row (HF's default, even for padded rows).</param>
    /// <param name="cache">KV cache to read and extend, or null.</param>
    /// <param name="hiddenStates">When given, receives the input of every block and the final output (HF's <c>hidden_states</c>).</param>
    public abstract Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        KvCache? cache = null, List<Tensor>? hiddenStates = null);

    /// <summary>The body of <paramref name="config"/>'s family, built in <paramref name="dtype"/> (default float32).</summary>
    public static DecoderBody Create(TransformerConfig config, ScalarType? dtype = null) => config.Family switch
    {
        ModelFamily.Gpt2 or ModelFamily.Llama => new Transformer(config, dtype),
        ModelFamily.Neox or ModelFamily.GptJ => new RotaryBody(config, dtype),
        ModelFamily.Opt => new Opt.OptModel(config, dtype),
        ModelFamily.Bloom => new Bloom.BloomModel(config, dtype),
        ModelFamily.Rwkv => new Rwkv.RwkvModel(config, dtype),
        _ => throw new RlhfException($"model_type {config.ModelType}: no decoder body for family {config.Family}."),
    };

    /// <summary>
    /// The input's length and the tokens already in <paramref name="cache"/>, after refusing a sequence (cache + input)
    /// beyond the context, before any work: past it a learned-position model indexes out of range and a rotary or ALiBi
    /// one runs on distances it never saw (issue: a 512-position LLaMA ran 730 ids and trained on 2048).
    /// </summary>
    protected (long T, int Past, Device Device) NewTokens(Tensor inputIds, KvCache? cache)
    {
        long t = inputIds.shape[1];
        int past = cache?.Length ?? 0;
        if (past + t > Config.MaxPositions)
            throw new RlhfException($"a sequence of {past + t} tokens is longer than the model's context of {Config.MaxPositions} positions " +
                                    "(max_position_embeddings or n_positions in config.json): shorten the input (max_length, max_prompt_length, max_new_tokens).");
        return (t, past, inputIds.device);
    }

    /// <summary>HF's default <c>position_ids</c> of the new tokens: past … past + t − 1 in every row, (1, t).</summary>
    protected static Tensor CountedPositions(int past, long t, Device device) => arange(past, past + t, dtype: int64, device: device).unsqueeze(0);

    /// <summary>
    /// The layers' additive mask (<see cref="Transformer.AdditiveMask(Tensor?, int, long, ScalarType, Device)"/>), or null
    /// when plain causal attention does: no padding and no cache.
    /// </summary>
    protected static Tensor? LayerMask(Tensor? attentionMask, KvCache? cache, int past, long t, ScalarType dtype, Device device) =>
        attentionMask is not null || cache is not null ? Transformer.AdditiveMask(attentionMask, past, t, dtype, device) : null;
}
