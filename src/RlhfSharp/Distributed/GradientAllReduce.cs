using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Distributed;

/// <summary>
/// Sums the gradients of a parameter list over every rank, in flat float buffers of at most
/// <see cref="BucketBytes"/> (PyTorch DDP's default bucket, 25 MB): one <c>MPI_Allreduce</c> per bucket instead of one per
/// tensor. Gradients go through host memory (CUDA-aware MPI is not used), so the same code serves any device.
/// The trainers normalise each rank's loss by the GLOBAL batch's count (tokens, sequences or pairs), so each rank's
/// gradient is its exact share and the sum is the one-process gradient, even when shards differ in size: no division
/// by the world size, which is exact only for equal shards of a per-rank mean.
/// </summary>
public sealed class GradientAllReduce(MpiWorld world)
{
    public const int BucketBytes = 25 * 1024 * 1024;
    float[]? buffer;

    public void Sum(IReadOnlyList<Parameter> parameters)
    {
        int bucketFloats = BucketBytes / sizeof(float);
        int start = 0;
        while (start < parameters.Count)
        {
            // A bucket takes parameters while they fit; a parameter larger than a bucket travels alone.
            int end = start;
            long floats = 0;
            while (end < parameters.Count && (end == start || floats + parameters[end].numel() + 1 <= bucketFloats))
                floats += parameters[end++].numel() + 1;
            SumBucket(parameters, start, end, (int)floats);
            start = end;
        }
    }

    /// <summary>
    /// One all-reduce for parameters [start, end). Each parameter carries one extra float, 1 when this rank has a gradient
    /// for it: a parameter no rank touched keeps no gradient (AdamW skips it, as in one process), one that some rank
    /// touched gets the sum, zeros standing in for the ranks that did not (an empty shard, an unused head).
    /// </summary>
    void SumBucket(IReadOnlyList<Parameter> parameters, int start, int end, int floats)
    {
        if (buffer is null || buffer.Length < floats) buffer = new float[floats];
        var span = buffer.AsSpan(0, floats);
        int offset = 0;
        using (NewDisposeScope())
        {
            for (int i = start; i < end; i++)
            {
                var p = parameters[i];
                int n = (int)p.numel();
                var grad = p.grad;
                if (grad is null) span.Slice(offset, n + 1).Clear();
                else
                {
                    grad.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().CopyTo(buffer, offset, 0);
                    span[offset + n] = 1;
                }
                offset += n + 1;
            }
        }
        world.SumInPlace(span);
        offset = 0;
        using (NewDisposeScope())
        using (no_grad())
        {
            for (int i = start; i < end; i++)
            {
                var p = parameters[i];
                int n = (int)p.numel();
                if (span[offset + n] > 0)
                {
                    var summed = tensor(buffer.AsSpan(offset, n).ToArray(), p.shape).to(p.dtype).to(p.device);
                    if (p.grad is null) p.grad = summed.MoveToOuterDisposeScope();
                    else p.grad.copy_(summed);
                }
                offset += n + 1;
            }
        }
    }
}
