using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>transformers' <c>TopKLogitsWarper</c>: every score below the k-th largest of its row becomes −∞ (ties kept).</summary>
public sealed class TopKWarper(int topK) : ILogitsProcessor
{
    public Tensor Process(Tensor scores, DecodingState state)
    {
        var kth = scores.topk(topK, -1).values.narrow(1, topK - 1, 1);
        return scores.masked_fill(scores.lt(kth), float.NegativeInfinity);
    }
}
