using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.T5;

/// <summary>
/// T5 with its language-model head (transformers v4.44 modeling_t5.py <c>T5ForConditionalGeneration</c>): one
/// <c>shared</c> embedding for encoder and decoder inputs, an encoder, a decoder with cross-attention, and a head that
/// is <c>shared</c> itself when tied (the decoder output scaled by d_model^-0.5 first, Mesh TensorFlow's rescaling) or
/// an unscaled <c>lm_head</c> (v1.1, FLAN-T5). Parameter names are HF's, so the key set is exactly HF's.
/// </summary>
public sealed class T5ForConditionalGeneration : nn.Module
{
#pragma warning disable IDE1006 // HF parameter names
    public readonly Embedding shared;
    public readonly T5Stack encoder;
    public readonly T5Stack decoder;
    public readonly Linear? lm_head;
#pragma warning restore IDE1006

    public T5Config Config { get; }

    /// <summary>The LoRA adapters attached to the projections (<see cref="Lora.T5Lora.Attach"/>), or null.</summary>
    public Lora.LoraConfig? Lora { get; internal set; }

    /// <summary>Whether the model has its language-model head; without it this is transformers' bare <c>T5Model</c>
    /// (shared, encoder, decoder), the body <see cref="T5ForSequenceClassification"/> puts its head on.</summary>
    public bool HasLmHead { get; }

    /// <param name="config">The architecture.</param>
    /// <param name="dtype">Element type of every parameter (default: float32).</param>
    /// <param name="lmHead">False for the bare body (HF <c>T5Model</c>: no <c>lm_head</c>, <see cref="Head"/> refuses).</param>
    public T5ForConditionalGeneration(T5Config config, ScalarType? dtype = null, bool lmHead = true) : base(nameof(T5ForConditionalGeneration))
    {
        Config = config;
        HasLmHead = lmHead;
        shared = nn.Embedding(config.VocabSize, config.DModel, dtype: dtype);
        encoder = new T5Stack(config, isDecoder: false, dtype);
        decoder = new T5Stack(config, isDecoder: true, dtype);
        if (lmHead && !config.TieWordEmbeddings) lm_head = nn.Linear(config.DModel, config.VocabSize, hasBias: false, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>The encoder's output (B, T, d_model) for <paramref name="inputIds"/> and its 0/1 <paramref name="attentionMask"/>.</summary>
    public Tensor Encode(Tensor inputIds, Tensor attentionMask, List<Tensor>? hiddenStates = null)
    {
        var h = shared.forward(inputIds);
        return encoder.Forward(h, PaddingMask(attentionMask, h.dtype), hiddenStates: hiddenStates);
    }

    /// <summary>
    /// The decoder's output (B, T, d_model) after its final norm. Without a cache the decoder sees
    /// <paramref name="decoderInputIds"/> causally, masked by <paramref name="decoderAttentionMask"/> (ones when null);
    /// with one, the new tokens see every cached token and themselves causally.
    /// </summary>
    public Tensor Decode(Tensor decoderInputIds, Tensor encoderStates, Tensor encoderAttentionMask, Tensor? decoderAttentionMask = null,
        T5DecoderCache? cache = null, List<Tensor>? hiddenStates = null)
    {
        var h = shared.forward(decoderInputIds);
        long t = decoderInputIds.shape[1], past = cache?.Length ?? 0;
        // modeling_utils.py get_extended_attention_mask (decoder): causal × padding, then (1 − m) · finfo.min.
        var causal = ones(t, past + t, ScalarType.Bool, h.device).tril(past);
        var allowed = causal.unsqueeze(0).unsqueeze(0);
        if (decoderAttentionMask is not null)
        {
            var pad = decoderAttentionMask.to(ScalarType.Bool);
            if (pad.shape[1] != past + t) throw new ArgumentException($"decoder attention mask covers {pad.shape[1]} positions, expected {past + t}");
            allowed = allowed.logical_and(pad.unsqueeze(1).unsqueeze(1));
        }
        var selfMask = zeros(allowed.shape, h.dtype, h.device).masked_fill(allowed.logical_not(), Lowest(h.dtype));
        return decoder.Forward(h, selfMask, encoderStates, PaddingMask(encoderAttentionMask, h.dtype), cache, hiddenStates);
    }

    /// <summary>
    /// ILQL's decoding heads, when attached (Checkpoints/IlqlHeadsFile.AttachIfPresent): <see cref="Head"/> then gives
    /// log π_β + β·(Q − V) of the decoder outputs instead of the raw logits, so generation, serving and evaluation use the
    /// ILQL policy, as <see cref="CausalLM.Ilql"/> does for decoder-only models. Not a registered module: it is saved
    /// beside the model, never inside its weights.
    /// </summary>
    public IlqlDecoding? Ilql { get; set; }

    /// <summary>Logits (…, vocab) of decoder outputs; shifted by <see cref="Ilql"/> when heads are attached.</summary>
    public Tensor Head(Tensor decoderOutput) => Ilql is { } ilql ? ilql.Shift(LanguageModelHead(decoderOutput), decoderOutput) : LanguageModelHead(decoderOutput);

    /// <summary>The language model's own logits (…, vocab) of decoder outputs (never shifted by ILQL heads).</summary>
    public Tensor LanguageModelHead(Tensor decoderOutput) => !HasLmHead
        ? throw new InvalidOperationException("this T5 body has no language-model head (it is a T5ForSequenceClassification's transformer)")
        : lm_head is not null
        ? lm_head.forward(decoderOutput)
        : nn.functional.linear(decoderOutput * Math.Pow(Config.DModel, -0.5), shared.weight!);

    /// <summary>Teacher-forced logits (B, Td, vocab).</summary>
    public Tensor Forward(Tensor inputIds, Tensor attentionMask, Tensor decoderInputIds, Tensor? decoderAttentionMask = null) =>
        Head(Decode(decoderInputIds, Encode(inputIds, attentionMask), attentionMask, decoderAttentionMask));

    /// <summary>
    /// A copy with its own weights (the EMA actor of PPO): same config, dtype and device, LoRA adapters attached as on this
    /// model (base frozen, adapters trainable), every parameter copied.
    /// </summary>
    public T5ForConditionalGeneration Clone()
    {
        var first = shared.weight!;
        var copy = new T5ForConditionalGeneration(Config, first.dtype, HasLmHead);
        if (Lora is { } lora) RlhfSharp.Lora.T5Lora.Attach(copy, lora);
        copy.to(first.device);
        var source = named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
            foreach (var (name, p) in copy.named_parameters())
            {
                p.copy_(source[name]);
                p.requires_grad = source[name].requires_grad;
            }
        ModelDropout.CopyTo(this, copy);
        copy.train(training);
        return copy;
    }

    /// <summary>HF's <c>_shift_right</c>: the decoder inputs for <paramref name="labels"/> (start token, then labels
    /// without their last; −100 replaced by pad).</summary>
    public Tensor ShiftRight(Tensor labels)
    {
        var start = full(labels.shape[0], 1, Config.DecoderStartTokenId, ScalarType.Int64, labels.device);
        var shifted = cat([start, labels.narrow(1, 0, labels.shape[1] - 1)], 1);
        return shifted.masked_fill(shifted.eq(-100), Config.PadTokenId);
    }

    /// <summary>(1 − mask) · finfo(dtype).min over key positions, (B, 1, 1, Tk): modeling_utils.py invert_attention_mask.</summary>
    static Tensor PaddingMask(Tensor attentionMask, ScalarType dtype) =>
        zeros([attentionMask.shape[0], 1, 1, attentionMask.shape[1]], dtype, attentionMask.device)
            .masked_fill(attentionMask.eq(0).unsqueeze(1).unsqueeze(1), Lowest(dtype));

    static double Lowest(ScalarType dtype) =>
        dtype == ScalarType.Float16 ? -65504.0 : dtype == ScalarType.BFloat16 ? -3.3895313892515355e38 : dtype == ScalarType.Float64 ? double.MinValue : float.MinValue;
}
