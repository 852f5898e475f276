using RlhfSharp.Checkpoints;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// The memory a stage's training will take, estimated from the model's config and the stage's shapes before anything is
/// loaded, against what the process can still get (<see cref="MemoryBudget.Available"/>, the load-time check's source):
/// a stage that cannot fit stops with both numbers and what to change, instead of the kernel killing it mid-step.
/// </summary>
/// <remarks>
/// The terms are the usual accounting of mixed-precision-free training (ZeRO paper, Rajbhandari et al. 2020 §3.1, with
/// float32 everywhere): weights, one gradient and AdamW's two moments per trainable parameter; frozen roles' weights; and
/// activations. The activations saved per token and decoder layer are counted as a pre-norm block saves them for its
/// backward: about 12 hidden-wide tensors (norm inputs and outputs, q/k/v and their rotated copies, the attention output,
/// residuals), 4 intermediate-wide ones (gate, up, the activation and the product) and the attention probabilities (heads
/// × keys) — the terms of Korthikanti et al. 2022 ("Reducing Activation Recomputation", §4.1) with a gated MLP and no
/// dropout. With gradient checkpointing (<see cref="LayerCheckpoint"/>) each layer keeps only its input, and one layer's
/// activations exist at a time in the backward. The head's float32 logits take three (rows, vocab) buffers (logits, the
/// softmax's temporary, their gradient), or three (chunk, vocab) ones with <see cref="StageConfig.LogprobChunkSize"/>.
/// Two transients come on top, never at once: in the backward, a trainable embedding's gradient, which LibTorch's
/// embedding backward forms dense (vocab × hidden) before adding it to the accumulated one (the same term covers SFT's
/// chunked head, which forms its (vocab × hidden) weight gradient in the forward and adds it in the backward's first
/// step, before the embedding's exists); in the optimizer step,
/// AdamW's temporaries (PyTorch's float32 step: two float32 copies of the largest parameter; bfloat16 moments: three
/// float32 pieces, <see cref="AdamW"/>). And the process itself: the .NET runtime and LibTorch before any tensor.
/// An estimate: docs/PERFORMANCE.md compares it with measured peaks.
/// </remarks>
public sealed record TrainingMemory(long Weights, long Gradients, long OptimizerMoments, long FrozenRoles, long Activations, long Logits,
    long EmbeddingGradient = 0, long OptimizerStep = 0)
{
    /// <summary>
    /// The process before any tensor: the .NET runtime and LibTorch's code and operator registry, 150 MiB resident on
    /// Linux x64 (docs/PERFORMANCE.md, "Loading a checkpoint": <c>peak_before_mb</c>).
    /// </summary>
    public const long Runtime = 160_000_000;

    /// <summary>Bytes of every term together: what stays resident through the step, plus the larger of the backward's and the optimizer step's transients.</summary>
    public long Total => Runtime + Weights + Gradients + OptimizerMoments + FrozenRoles + Math.Max(Activations + Logits + EmbeddingGradient, OptimizerStep);

    /// <summary>
    /// The estimate for training a model of <paramref name="c"/> in <paramref name="dtype"/> on <paramref name="rows"/>
    /// sequences of <paramref name="tokens"/> per forward.
    /// </summary>
    /// <param name="lora">The stage's adapters, or null for full fine-tuning.</param>
    /// <param name="frozenBytes">The weights of the frozen roles the stage also holds (reference, reward model, a base copy).</param>
    /// <param name="optimizer">The trained model's optimizer settings (its moments' dtypes); null: moments in <paramref name="dtype"/>.</param>
    /// <param name="lmHead">False for a reward model's score head, which makes no vocabulary-wide logits.</param>
    public static TrainingMemory Estimate(TransformerConfig c, ScalarType dtype, LoraConfig? lora, int rows, int tokens,
        bool checkpointing, int logprobChunkSize, long frozenBytes, OptimizerConfig? optimizer = null, bool lmHead = true)
    {
        int e = MemoryBudget.ElementSize(dtype);
        long parameters = c.ParameterCount();
        long h = c.HiddenSize, inter = c.Moe is { } moe ? (long)moe.ExpertSize * moe.TopK : c.IntermediateSize;
        // LoRA: r × (in + out) per targeted module and layer; q_proj and v_proj (LoraConfig's default targets) are hidden-wide.
        long trainable = lora is null ? parameters : (long)c.NumLayers * (lora.TargetModules?.Count ?? 2) * lora.R * 2 * h;
        long positions = (long)rows * tokens;
        long perLayer = 12 * h + 4 * inter + (long)c.NumHeads * tokens; // elements per token, see the remarks
        long activations = checkpointing
            ? positions * (c.NumLayers * h + perLayer) * e
            : positions * c.NumLayers * perLayer * e;
        long logitRows = logprobChunkSize > 0 ? Math.Min(logprobChunkSize, positions) : positions;
        long logits = lmHead ? 3 * logitRows * c.VocabSize * 4 : 0;
        long embedding = (long)c.VocabSize * h;
        // The chunked head sums its weight gradient in float32 whatever the model's dtype.
        long embeddingGradient = lora is null ? embedding * (logprobChunkSize > 0 ? Math.Max(e, 4) : e) : 0;
        // AdamW's temporaries: float32 moments take two float32 copies of the largest parameter (the embedding, or an MLP
        // matrix); reduced-precision moments work in pieces of 8 M elements with three float32 buffers.
        bool reduced = optimizer is { } o && o.MomentBytes(e) < 2 * e;
        long largest = lora is null ? Math.Max(embedding, (long)inter * h) : (long)lora.R * h;
        long optimizerStep = reduced ? 3 * Math.Min(largest, 1L << 23) * 4 : 2 * largest * 4;
        return new TrainingMemory(parameters * e, trainable * e, trainable * (optimizer?.MomentBytes(e) ?? 2 * e), frozenBytes, activations, logits,
            embeddingGradient, optimizerStep);
    }

    /// <summary>
    /// Refuses a stage whose estimate exceeds the available memory, before any weight is read; <paramref name="stage"/>
    /// names the recipe section in the advice.
    /// </summary>
    public void Check(string stage)
    {
        var (available, from) = MemoryBudget.Available();
        if (available is long bytes) Check(stage, bytes, from);
    }

    /// <summary>The check against a given number of available bytes (<paramref name="from"/> says where it came from).</summary>
    public void Check(string stage, long available, string from)
    {
        if (Total <= available) return;
        var advice = new List<string>();
        if (Gradients == Weights) advice.Add($"train LoRA adapters ({stage}.lora) instead of every weight");
        if (OptimizerMoments >= 2 * Gradients) advice.Add($"keep AdamW's moments in bfloat16 ({stage}'s optimizer: momentum_dtype and variance_dtype: bfloat16)");
        if (FrozenRoles > 0) advice.Add($"hold the frozen roles in bfloat16 ({stage}.reference_dtype: bf16)");
        if (Activations > Weights / 4) advice.Add($"turn on {stage}.gradient_checkpointing or use a smaller batch or max_length");
        if (Logits > Weights / 4) advice.Add($"set {stage}.logprob_chunk_size (e.g. 256)");
        advice.Add("or use a machine with more memory");
        throw new RlhfException($"{stage}: training needs about {Gb(Total)} (weights {Gb(Weights)}, gradients {Gb(Gradients)}, AdamW moments {Gb(OptimizerMoments)}, " +
                                $"frozen roles {Gb(FrozenRoles)}, activations {Gb(Activations)}, logits {Gb(Logits)}, " +
                                $"the backward's or the optimizer step's temporaries and the runtime {Gb(Total - Weights - Gradients - OptimizerMoments - FrozenRoles - Activations - Logits)}) " +
                                $"but only {Gb(available)} is available ({from}); " +
                                string.Join(", ", advice) + ".");
    }

    static string Gb(long bytes) => $"{bytes / 1e9:0.00} GB";
}
