using System.Runtime.InteropServices;
using TorchSharp.Modules;
using AdamW = TorchSharp.Modules.AdamW; // TorchSharp's, not Training/AdamW: its State exposes the moments the checkpoints gather
using static TorchSharp.torch;

namespace RlhfSharp.Distributed;

/// <summary>
/// ZeRO stage 1 (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models";
/// DeepSpeed's <c>zero_optimization.stage: 1</c>, deepspeed/runtime/zero/stage_1_and_2.py): every rank holds the AdamW
/// moments of only its 1/N of the parameters. The trained parameters are laid end to end in one flat space, padded to a
/// multiple of the world size N, and rank r owns the contiguous slice [r·L, (r+1)·L), L = padded length / N. A step:
/// <list type="number">
/// <item>the gradients are reduce-scattered (<c>MPI_Reduce_scatter_block</c>, in buckets), so each rank receives the sum
/// over every rank of its own slice, written into its slice of the module's <c>.grad</c>;</item>
/// <item>the global gradient norm is the square root of the all-reduced sum of each rank's slice sum of squares, so every
/// rank clips by the same factor and skips a non-finite step together;</item>
/// <item>TorchSharp's own AdamW steps this rank's slice: one <see cref="Parameter"/> per (parameter ∩ slice), a view of the
/// module's parameter, in the decay or the no-decay group of its parameter, so the update is elementwise the update of
/// the unsharded AdamW (same moments, same per-parameter step count, same skip of a parameter no rank has a gradient for);</item>
/// <item>the updated slices are all-gathered (<c>MPI_Allgather</c>, in buckets) into every rank's parameters.</item>
/// </list>
/// Unlike DeepSpeed (whose module weights are fp16/bf16, so it keeps a separate fp32 master slice), the weights that train
/// here are float32 already, so the slice's views of them are the master weights and no copy is kept: what a rank holds
/// beyond one process is its 1/N of the moments plus one <see cref="GradientAllReduce.BucketBytes"/> transfer buffer.
/// One flat space over both groups rather than one per group (DeepSpeed) balances the slices as well and gives the same
/// update. PyTorch's ZeroRedundancyOptimizer (torch/distributed/optim/zero_redundancy_optimizer.py) shards whole
/// parameters instead; flat slices keep the ranks' shares equal whatever the parameter sizes.
/// </summary>
public sealed class ZeroRedundancyAdamW : IDisposable
{
    readonly MpiWorld world;
    readonly Parameter[] parameters;
    readonly long[] offsets; // flat start of each parameter; offsets[^1] = total
    readonly long sliceLength;
    readonly AdamW adam;
    readonly List<(Parameter Piece, int Index, long Start)> pieces = []; // Start: within the parameter
    readonly float[] bucket, block;
    readonly double[] hasGrad;

    /// <summary>Real elements (without padding) in the flat space.</summary>
    public long Length => offsets[^1];

    /// <param name="decay">Matrices: stepped with <paramref name="weightDecay"/>.</param>
    /// <param name="plain">Vectors: stepped without weight decay.</param>
    public ZeroRedundancyAdamW(IReadOnlyList<Parameter> decay, IReadOnlyList<Parameter> plain, double learningRate, double beta1, double beta2,
        double eps, double weightDecay, MpiWorld world)
    {
        this.world = world;
        parameters = [.. decay, .. plain];
        foreach (var p in parameters)
            if (p.dtype != ScalarType.Float32 || p.device_type != DeviceType.CPU || !p.is_contiguous())
                throw new RlhfException($"optimizer.zero_stage 1 shards contiguous float32 CPU parameters; a trained parameter of shape [{string.Join(", ", p.shape)}] is {p.dtype} on {p.device_type}: set zero_stage 0.");
        offsets = new long[parameters.Length + 1];
        for (int i = 0; i < parameters.Length; i++) offsets[i + 1] = offsets[i] + parameters[i].numel();
        sliceLength = (Length + world.Size - 1) / world.Size;
        long lo = world.Rank * sliceLength, hi = Math.Min(Length, lo + sliceLength);
        var (decayPieces, plainPieces) = (new List<Parameter>(), new List<Parameter>());
        using (no_grad())
            for (int i = 0; i < parameters.Length; i++)
            {
                long s = Math.Max(lo, offsets[i]), e = Math.Min(hi, offsets[i + 1]);
                if (s >= e) continue;
                // detach(): an alias of the weights without their autograd identity; the narrowed view shares their storage.
                var piece = new Parameter(parameters[i].detach().view(-1).narrow(0, s - offsets[i], e - s), requires_grad: true);
                pieces.Add((piece, i, s - offsets[i]));
                (i < decay.Count ? decayPieces : plainPieces).Add(piece);
            }
        var groups = new List<AdamW.ParamGroup>();
        // Both groups always exist (possibly empty on a rank whose slice holds no vector) so every rank's state has one layout.
        groups.Add(new AdamW.ParamGroup(decayPieces, learningRate, beta1, beta2, eps, weightDecay, false, false));
        groups.Add(new AdamW.ParamGroup(plainPieces, learningRate, beta1, beta2, eps, 0.0, false, false));
        adam = optim.AdamW(groups, learningRate, beta1, beta2, eps, weightDecay);
        // Each bucket moves one block of at most this many floats per rank: the send buffer is one DDP bucket (25 MB).
        int blockFloats = (int)Math.Clamp(GradientAllReduce.BucketBytes / sizeof(float) / world.Size, 1, Math.Max(1, sliceLength));
        bucket = new float[blockFloats * world.Size];
        block = new float[blockFloats];
        hasGrad = new double[parameters.Length];
    }

    /// <summary>Bytes of AdamW state this rank holds (first and second moments of its slice).</summary>
    public long StateBytes => pieces.Sum(p => p.Piece.numel()) * 2 * sizeof(float);

    public void SetLearningRate(double lr)
    {
        foreach (var g in adam.ParamGroups) g.LearningRate = lr;
    }

    /// <summary>
    /// Sums every rank's gradients into this rank's slice (reduce-scatter) and returns the global gradient norm: the same
    /// number on every rank, NaN or infinite on every rank when any rank's gradient is not finite.
    /// </summary>
    public double ReduceGradients()
    {
        // A parameter some rank has a gradient for gets the sum (zeros for the ranks without one); one no rank touched
        // keeps none, so AdamW skips it as in one process (GradientAllReduce's rule).
        for (int i = 0; i < parameters.Length; i++) hasGrad[i] = parameters[i].grad is null ? 0 : 1;
        world.SumInPlace(hasGrad);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        for (int i = 0; i < parameters.Length; i++)
            if (hasGrad[i] > 0 && parameters[i].grad is null) parameters[i].grad = zeros_like(parameters[i]).MoveToOuterDisposeScope();
        var grads = parameters.Select(p => p.grad is { } g ? g.view(-1) : null).ToArray();
        int n = world.Size;
        for (long k = 0; k < sliceLength; k += block.Length)
        {
            int b = (int)Math.Min(block.Length, sliceLength - k);
            for (int r = 0; r < n; r++) Copy(grads, r * sliceLength + k, bucket.AsSpan(r * b, b), toTensors: false);
            world.ReduceScatterSum(bucket.AsSpan(0, n * b), block.AsSpan(0, b));
            Copy(grads, world.Rank * sliceLength + k, block.AsSpan(0, b), toTensors: true);
        }
        var squares = zeros(1, ScalarType.Float64);
        foreach (var (piece, index, start) in pieces)
        {
            if (hasGrad[index] > 0)
            {
                var g = grads[index]!.narrow(0, start, piece.numel());
                piece.grad = g;
                squares += g.square().sum().to(ScalarType.Float64);
            }
            else piece.grad = null;
        }
        double[] total = [squares.item<double>()];
        world.SumInPlace(total);
        return Math.Sqrt(total[0]);
    }

    /// <summary>Multiplies this rank's slice of the summed gradient by <paramref name="factor"/> (gradient clipping).</summary>
    public void ScaleGradients(double factor)
    {
        using var _ = no_grad();
        foreach (var (piece, _, _) in pieces) piece.grad?.mul_(factor);
    }

    /// <summary>
    /// AdamW on this rank's slice (in place in the module's weights), with no garbage collection inside it: TorchSharp's
    /// AdamW divides by C# doubles, each a temporary native Scalar that a collection landing mid-call may finalize while
    /// libtorch still reads it (seen as "Expected false to be true … Scalar.h:140" in two-rank runs before
    /// Training/AdamW replaced it for the unsharded path).
    /// </summary>
    public void StepSlice()
    {
        bool held = GC.TryStartNoGCRegion(64L << 20);
        try { adam.step(); }
        finally { if (held && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) GC.EndNoGCRegion(); }
    }

    /// <summary>Every rank's updated slice into every rank's parameters (all-gather).</summary>
    public void GatherWeights()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flat = parameters.Select(p => p.detach().view(-1)).ToArray();
        int n = world.Size;
        for (long k = 0; k < sliceLength; k += block.Length)
        {
            int b = (int)Math.Min(block.Length, sliceLength - k);
            Copy(flat, world.Rank * sliceLength + k, block.AsSpan(0, b), toTensors: false);
            world.AllGather(block.AsSpan(0, b), bucket.AsSpan(0, n * b));
            for (int r = 0; r < n; r++)
                if (r != world.Rank) Copy(flat, r * sliceLength + k, bucket.AsSpan(r * b, b), toTensors: true);
        }
    }

    /// <summary>Zeroes the module's gradients in place, as TorchSharp's optimizers do, and drops the slice's views of them.</summary>
    public void ZeroGrad()
    {
        foreach (var p in parameters)
        {
            using var g = p.grad;
            g?.zero_();
        }
        foreach (var (piece, _, _) in pieces) piece.grad = null;
    }

    /// <summary>
    /// Copies between the flat range [start, start + span.Length) of <paramref name="tensors"/> (flattened, end to end) and
    /// <paramref name="span"/>; a null tensor and the padding past the end read as zeros and are never written.
    /// </summary>
    void Copy(Tensor?[] tensors, long start, Span<float> span, bool toTensors)
    {
        long end = start + span.Length;
        if (!toTensors) span.Clear();
        int i = Array.BinarySearch(offsets, start);
        if (i < 0) i = ~i - 1;
        for (; i < parameters.Length && offsets[i] < end; i++)
        {
            long s = Math.Max(start, offsets[i]), e = Math.Min(end, offsets[i + 1]);
            if (s >= e || tensors[i] is not { } t) continue;
            using var view = t.narrow(0, s - offsets[i], e - s);
            var values = MemoryMarshal.Cast<byte, float>(view.bytes);
            var part = span.Slice((int)(s - start), (int)(e - s));
            if (toTensors) part.CopyTo(values);
            else values.CopyTo(part);
        }
    }

    // --- Checkpoints: the moments are gathered to rank 0, which writes them whole, so a run resumes at any number of ranks.

    /// <summary>The whole optimizer state, gathered on rank 0 (null on the other ranks). Every rank must call it.</summary>
    public sealed record Whole(long[] Numels, long[] Steps, float[] ExpAvg, float[] ExpAvgSq);

    public Whole? Gather()
    {
        // A parameter's step count, from the rank holding its first element (the sum then counts it once).
        var steps = new double[parameters.Length];
        var states = adam.state_dict().State.Cast<AdamW.State>().ToArray();
        for (int j = 0; j < pieces.Count; j++)
            if (pieces[j].Start == 0) steps[pieces[j].Index] = states[j].step;
        world.SumInPlace(steps);
        float[] Moment(Func<AdamW.State, Tensor> moment)
        {
            var mine = new float[sliceLength];
            using (no_grad())
                for (int j = 0; j < pieces.Count; j++)
                {
                    long at = offsets[pieces[j].Index] + pieces[j].Start - world.Rank * sliceLength;
                    MemoryMarshal.Cast<byte, float>(moment(states[j]).bytes).CopyTo(mine.AsSpan((int)at));
                }
            var all = new float[world.Rank == 0 ? sliceLength * world.Size : 0]; // padded: Write stops at Length
            world.GatherToRoot(mine, all);
            return all;
        }
        var expAvg = Moment(s => s.exp_avg);
        var expAvgSq = Moment(s => s.exp_avg_sq);
        if (world.Rank != 0) return null;
        return new Whole(parameters.Select(p => p.numel()).ToArray(), steps.Select(s => (long)s).ToArray(), expAvg, expAvgSq);
    }

    public const string Marker = "ZeroRedundancyAdamW";

    /// <summary>Writes what <see cref="Gather"/> returned, in a layout that does not depend on the number of ranks.</summary>
    public static void Write(BinaryWriter w, Whole whole)
    {
        w.Write(Marker);
        w.Write(whole.Numels.Length);
        foreach (var n in whole.Numels) w.Write(n);
        foreach (var s in whole.Steps) w.Write(s);
        int length = (int)whole.Numels.Sum();
        w.Write(MemoryMarshal.AsBytes(whole.ExpAvg.AsSpan(0, length)));
        w.Write(MemoryMarshal.AsBytes(whole.ExpAvgSq.AsSpan(0, length)));
    }

    /// <summary>Reads this rank's slice of a state <see cref="Write"/> wrote (after its marker), at any number of ranks.</summary>
    public void Read(BinaryReader r, string file)
    {
        int count = r.ReadInt32();
        var numels = Enumerable.Range(0, count).Select(_ => r.ReadInt64()).ToArray();
        if (!numels.SequenceEqual(parameters.Select(p => p.numel())))
            throw new RlhfException($"{file}: the saved optimizer state covers {count} parameters of {numels.Sum():N0} elements, the model trains {parameters.Length} of {Length:N0}: the saved state belongs to another model.");
        var steps = Enumerable.Range(0, count).Select(_ => r.ReadInt64()).ToArray();
        long momentsAt = r.BaseStream.Position;
        var states = adam.state_dict().State.Cast<AdamW.State>().ToArray();
        using var _ = no_grad();
        for (int j = 0; j < pieces.Count; j++)
        {
            var (piece, index, start) = pieces[j];
            states[j].step = steps[index];
            int bytes = (int)piece.numel() * sizeof(float);
            foreach (var (moment, m) in new[] { (states[j].exp_avg, 0L), (states[j].exp_avg_sq, 1L) })
            {
                r.BaseStream.Position = momentsAt + (m * Length + offsets[index] + start) * sizeof(float);
                r.BaseStream.ReadExactly(moment.bytes[..bytes]);
            }
        }
    }

    public void Dispose()
    {
        adam.Dispose();
        foreach (var (piece, _, _) in pieces) piece.Dispose();
    }
}
