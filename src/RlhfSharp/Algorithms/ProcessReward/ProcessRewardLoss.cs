using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace RlhfSharp.Algorithms.ProcessReward;

/// <summary>
/// The process reward model's loss: token classification with two classes (bad, good) at the labelled positions only, as
/// TRL's PRMTrainer trains an <c>AutoModelForTokenClassification</c> (HF's <c>CrossEntropyLoss</c>, <c>ignore_index</c> −100,
/// mean over the labelled tokens). A soft label p (Math-Shepherd) is the target distribution (1 − p, p), which for p ∈ {0, 1}
/// is exactly the hard-label cross-entropy.
/// </summary>
public static class ProcessRewardLoss
{
    /// <summary>TRL's label for a token that carries no step label (HF's <c>ignore_index</c>).</summary>
    public const float Ignore = -100f;

    /// <summary>Mean over labelled positions of −[(1 − p)·log q₀ + p·log q₁], q = softmax(logits).</summary>
    /// <param name="logits">(B, T, 2) token scores.</param>
    /// <param name="labels">(B, T) P(good step) at each step's last token, <see cref="Ignore"/> elsewhere.</param>
    public static Tensor Loss(Tensor logits, Tensor labels)
    {
        var mask = labels.ne(Ignore).to(logits.dtype);
        var p = labels.clamp(0, 1).to(logits.dtype);
        var logq = F.log_softmax(logits, -1);
        var perToken = -((1 - p) * logq.select(-1, 0) + p * logq.select(-1, 1));
        return (perToken * mask).sum() / mask.sum().clamp_min(1);
    }

    /// <summary>P(good) at every position: the PRM's step score where a step ends (Lightman et al. score a step by P(positive)).</summary>
    public static Tensor GoodProbability(Tensor logits) => F.softmax(logits.to(ScalarType.Float32), -1).select(-1, 1);
}
