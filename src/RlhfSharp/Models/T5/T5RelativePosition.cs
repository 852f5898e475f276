using static TorchSharp.torch;

namespace RlhfSharp.Models.T5;

/// <summary>
/// T5's relative position buckets (Raffel et al. 2020 §2.1; transformers v4.44 modeling_t5.py
/// <c>T5Attention._relative_position_bucket</c>), computed with the same float32 tensor ops as HF so the log-spaced
/// boundaries round identically.
/// </summary>
public static class T5RelativePosition
{
    /// <summary>Bucket of each <c>key − query</c> distance. Bidirectional (encoder): half the buckets per sign; causal
    /// (decoder): only distances ≤ 0. Below half of a side's buckets distances are exact, then log-spaced up to
    /// <paramref name="maxDistance"/>, then clamped.</summary>
    public static Tensor Bucket(Tensor relativePosition, bool bidirectional, int numBuckets, int maxDistance)
    {
        var buckets = zeros_like(relativePosition);
        if (bidirectional)
        {
            numBuckets /= 2;
            buckets = buckets + relativePosition.gt(0).to(ScalarType.Int64) * numBuckets;
            relativePosition = relativePosition.abs();
        }
        else relativePosition = -minimum(relativePosition, zeros_like(relativePosition));
        int maxExact = numBuckets / 2;
        var isSmall = relativePosition.lt(maxExact);
        var large = maxExact + (log(relativePosition.to(ScalarType.Float32) / maxExact)
            / Math.Log((double)maxDistance / maxExact) * (numBuckets - maxExact)).to(ScalarType.Int64);
        large = minimum(large, full_like(large, numBuckets - 1));
        return buckets + where(isSmall, relativePosition, large);
    }

    /// <summary>The bucket index of every (query, key) pair, (queryLength, keyLength), for queries at
    /// <paramref name="queryOffset"/>.. (the tokens already in a decoder cache come first).</summary>
    public static Tensor Buckets(long queryOffset, long queryLength, long keyLength, bool bidirectional, int numBuckets, int maxDistance, Device device)
    {
        var context = arange(queryOffset, queryOffset + queryLength, ScalarType.Int64, device).unsqueeze(1);
        var memory = arange(0, keyLength, ScalarType.Int64, device).unsqueeze(0);
        return Bucket(memory - context, bidirectional, numBuckets, maxDistance);
    }
}
