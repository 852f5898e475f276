using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// A transformer with a language-model head (HF <c>*ForCausalLM</c> / <c>GPT2LMHeadModel</c>). With tied
/// embeddings there is no separate head parameter: logits use the embedding matrix directly, so the
/// optimizer sees the shared weight once.
/// </summary>
public sealed class CausalLM : nn.Module
{
#pragma warning disable IDE1006
    public readonly DecoderBody model;
    public readonly Linear? lm_head;
#pragma warning restore IDE1006

    public TransformerConfig Config => model.Config;

    /// <summary>Token positions run forward by this instance, padding included: the throughput counter of reports.</summary>
    public long TokensProcessed { get; private set; }
    /// <summary>
    /// ILQL's decoding heads, when the checkpoint has them (Checkpoints/IlqlHeadsFile): <see cref="Forward"/> then returns
    /// log π_β + β·(Q − V) instead of the raw logits, so every sampler, server and KL estimate uses the ILQL policy.
    /// Not a registered module: it is saved beside the model, never inside its weights.
    /// </summary>
    public IlqlDecoding? Ilql { get; set; }
    /// <summary>True for the view made by <see cref="WithoutAdapters"/>.</summary>
    readonly bool adaptersOff;

    /// <param name="config">The architecture.</param>
    /// <param name="dtype">Element type of every parameter (default: float32).</param>
    public CausalLM(TransformerConfig config, ScalarType? dtype = null) : base(nameof(CausalLM))
    {
        model = DecoderBody.Create(config, dtype);
        if (!config.TieWordEmbeddings) lm_head = LayerInit.Linear(model.OutputSize, config.VocabSize, hasBias: config.LmHeadBias, dtype);
        RegisterComponents();
    }

    /// <summary>Logits (B, T, vocab), or (B, 1, vocab) for the last position only when <paramref name="lastOnly"/>.</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        KvCache? cache = null, bool lastOnly = false, List<Tensor>? hiddenStates = null)
    {
        var h = Hidden(inputIds, attentionMask, positionIds, cache, hiddenStates);
        if (lastOnly) h = h.narrow(1, h.shape[1] - 1, 1);
        return Ilql is { } ilql ? ilql.Shift(Head(h), h) : Head(h);
    }

    /// <summary>
    /// The final hidden states (B, T, <see cref="DecoderBody.OutputSize"/>) that <see cref="Forward"/> gives the head: for
    /// callers that read the head a chunk of positions at a time (<see cref="Training.ChunkedLogprobs"/>), so the (B, T,
    /// vocab) logits never exist.
    /// </summary>
    public Tensor Hidden(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        KvCache? cache = null, List<Tensor>? hiddenStates = null)
    {
        TokensProcessed += inputIds.numel();
        // The adapters are the body's only (the head is a plain Linear or the embedding), so the switch covers the body.
        using var off = adaptersOff ? Lora.LoraModel.AdaptersOff(model) : null;
        return model.Forward(inputIds, attentionMask, positionIds, cache, hiddenStates);
    }

    /// <summary>
    /// The same module with its LoRA adapters switched off during <see cref="Forward"/>: the frozen reference of DPO,
    /// PPO and GRPO when the policy trains adapters, with no second copy of the weights. The view registers nothing,
    /// so it has no parameters of its own (freezing or disposing it touches nothing) and its train/eval flag is its own.
    /// </summary>
    public CausalLM WithoutAdapters()
    {
        if (model.Lora is null) throw new InvalidOperationException("the model has no LoRA adapters to switch off");
        return new CausalLM(this);
    }

    CausalLM(CausalLM source) : base(nameof(CausalLM))
    {
        model = source.model;
        lm_head = source.lm_head;
        adaptersOff = true;
    }

    /// <summary>An independent copy with the same weights (LoRA adapters included), dtype and device (a frozen reference, an EMA).</summary>
    /// <param name="dtype">Hold the copy in this type instead (a frozen role in bf16); its weights are the originals rounded once.</param>
    public CausalLM Clone(ScalarType? dtype = null)
    {
        var first = parameters().First();
        var type = dtype ?? first.dtype;
        var copy = new CausalLM(Config, type); // built in its dtype: a bf16 reference never exists in float32
        if (model.Lora is { } lora) Lora.LoraModel.Attach(copy, lora);
        var source = named_parameters().ToDictionary(p => p.name, p => p.parameter);
        copy.to(type).to(first.device);
        using (torch.no_grad())
            foreach (var (name, p) in copy.named_parameters())
            {
                p.copy_(source[name]);
                if (model.Lora is not null) p.requires_grad = source[name].requires_grad; // base frozen, adapters trainable
            }
        ModelDropout.CopyTo(this, copy);
        copy.train(training);
        return copy;
    }

    /// <summary>The tensors <see cref="Head"/> applies: the head's weight (the embedding matrix when tied), its bias and soft-cap.</summary>
    public LmHeadWeights HeadWeights => new(lm_head?.weight ?? model.Embeddings.weight!, lm_head?.bias, Config.FinalLogitSoftcap);

    /// <summary>Applies the LM head to hidden states.</summary>
    public Tensor Head(Tensor hidden)
    {
        var logits = lm_head is not null
            ? lm_head.forward(hidden)
            : nn.functional.linear(hidden, model.Embeddings.weight!);
        // Gemma 2's final_logit_softcapping: cap·tanh(logits/cap) (Gemma2ForCausalLM.forward, v4.44).
        return Config.FinalLogitSoftcap is double cap ? (logits / cap).tanh() * cap : logits;
    }
}
