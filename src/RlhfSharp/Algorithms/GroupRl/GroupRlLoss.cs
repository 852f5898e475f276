using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.GroupRl;

/// <summary>How the per-token policy loss of an optimizer step becomes one number (TRL <c>GRPOConfig.loss_type</c>).</summary>
public enum LossAggregation
{
    /// <summary><c>Σ l·m / Σ m</c> over every token of the step: long completions weigh more (DAPO, Yu et al. 2025 §3.3; TRL "dapo").</summary>
    TokenMean,
    /// <summary>Mean over sequences of each sequence's token mean (DeepSeekMath Eq. 3; TRL "grpo"): biased towards short wrong answers.</summary>
    SeqMeanTokenMean,
    /// <summary><c>Σ l·m / (sequences · max_completion_length)</c>: a constant normaliser (Dr. GRPO, Liu et al. 2025 §3.1; TRL "dr_grpo").</summary>
    SeqMeanTokenSumNorm,
}

/// <summary>
/// The loss of one micro-batch as its share of the optimizer step's loss. Each denominator counts the whole step (all
/// its micro-batches), never the micro-batch alone, so summing the micro-batches' gradients gives exactly the gradient
/// of the step's batch in one piece. Dividing per micro-batch and averaging (HF Trainer's gradient accumulation until
/// transformers 4.46) weighs a token of a short micro-batch more than one of a long micro-batch.
/// </summary>
public static class GroupRlLoss
{
    /// <param name="perToken">Per-token loss of this micro-batch, [b, T].</param>
    /// <param name="mask">1.0 for completion tokens, [b, T].</param>
    /// <param name="stepTokens">Completion tokens in the whole optimizer step (Σ of every micro-batch's mask).</param>
    /// <param name="stepSequences">Completions in the whole optimizer step.</param>
    /// <param name="maxCompletionLength">Dr. GRPO's constant (the generation budget), for <see cref="LossAggregation.SeqMeanTokenSumNorm"/>.</param>
    public static Tensor Aggregate(Tensor perToken, Tensor mask, LossAggregation aggregation, double stepTokens, int stepSequences, int maxCompletionLength)
    {
        var masked = perToken * mask;
        return aggregation switch
        {
            LossAggregation.TokenMean => masked.sum() / Math.Max(1.0, stepTokens),
            // An empty completion contributes 0 rather than 0/0.
            LossAggregation.SeqMeanTokenMean => (masked.sum(1) / mask.sum(1).clamp_min(1)).sum() / Math.Max(1, stepSequences),
            LossAggregation.SeqMeanTokenSumNorm => masked.sum() / ((double)Math.Max(1, stepSequences) * maxCompletionLength),
            _ => throw new ArgumentOutOfRangeException(nameof(aggregation)),
        };
    }
}
