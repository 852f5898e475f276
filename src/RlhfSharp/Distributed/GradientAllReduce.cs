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
        // One host copy each way per bucket, into a buffer kept across steps: no managed allocation per parameter or
        // per step (garbage collections wake TorchSharp's finalizers, which a training loop should not invite).
        if (buffer is null || buffer.Length < floats) buffer = new float[floats];
        using (NewDisposeScope())
        using (no_grad())
        {
            var pieces = new List<Tensor>(2 * (end - start));
            for (int i = start; i < end; i++)
            {
                var p = parameters[i];
                pieces.Add(p.grad is { } g ? g.detach().reshape(-1).to(ScalarType.Float32).cpu() : zeros(p.numel(), ScalarType.Float32));
                pieces.Add(full(1, p.grad is null ? 0f : 1f, ScalarType.Float32));
            }
            cat(pieces, 0).data<float>().CopyTo(buffer, 0, 0);
        }
        world.SumInPlace(buffer.AsSpan(0, floats));
        using (NewDisposeScope())
        using (no_grad())
        {
            var flat = tensor(buffer, [buffer.Length]);
            long offset = 0;
            for (int i = start; i < end; i++)
            {
                var p = parameters[i];
                long n = p.numel();
                if (buffer[offset + n] > 0)
                {
                    var summed = flat.narrow(0, offset, n).view(p.shape).to(p.dtype).to(p.device);
                    if (p.grad is null) p.grad = summed.clone().MoveToOuterDisposeScope();
                    else p.grad.copy_(summed);
                }
                offset += n + 1;
            }
        }
    }
}
