using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace RlhfSharp.Training;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter 2019) whose moments may be held in bfloat16, as torchdistx's <c>AnyPrecisionAdamW</c>
/// (transformers' <c>optim="adamw_anyprecision"</c>) holds them. Written here rather than taken from TorchSharp's
/// <c>optim.AdamW</c> for three reasons:
/// <list type="bullet">
/// <item>TorchSharp allocates both moments in the parameter's dtype: 8 bytes per float32 weight, 4 GB on Qwen2.5-0.5B.</item>
/// <item>TorchSharp runs the whole step in one dispose scope, so every parameter's denominator (and its square root) stays
/// alive until the last parameter is done: two more copies of the weights at the step's peak. Here each parameter's
/// temporaries are freed before the next one's.</item>
/// <item>TorchSharp turns each C# double into a native Scalar the garbage collector may finalize while libtorch still reads
/// it (seen as "Scalar.h:140" under mpirun); here every Scalar is held until its call returns.</item>
/// </list>
/// With moments in the parameter's dtype (the default) the arithmetic is TorchSharp's and PyTorch's single-tensor AdamW,
/// operation for operation, so results are bit-identical to <c>optim.AdamW</c> (AdamWTests). With bfloat16 moments it follows AnyPrecisionAdamW
/// (torchdistx <c>optimizers/anyprecision_optimizer.py</c>; the same file ships in meta-llama/llama-recipes): the moments
/// are updated in place in bfloat16, the bias corrections are float32 tensors, and the denominator is formed in the
/// variance's dtype. AnyPrecisionAdamW's Kahan summation is left out: it compensates bfloat16 weights, and the stages
/// train float32 weights. The state is saved in TorchSharp's AdamW layout, so optimizer files written before stay readable.
/// </summary>
public sealed class AdamW : OptimizerHelper
{
    readonly ScalarType? momentumDtype, varianceDtype;
    /// <summary>
    /// Elements per piece of a reduced-precision step: 8 M, so a piece's float32 buffers are 32 MB each, which glibc always
    /// maps and unmaps (its largest mmap threshold) instead of keeping freed in its heap (bench <c>adamw-memory</c>).
    /// </summary>
    const long Piece = 1L << 23;

    /// <param name="groups">TorchSharp's AdamW parameter groups (learning rate, betas, eps and weight decay per group).</param>
    /// <param name="momentumDtype">The first moment's dtype; null: the parameter's, as PyTorch's AdamW (<c>zeros_like(p)</c>).</param>
    /// <param name="varianceDtype">The second moment's dtype; null: the parameter's.</param>
    public AdamW(IEnumerable<TorchSharp.Modules.AdamW.ParamGroup> groups, ScalarType? momentumDtype = null, ScalarType? varianceDtype = null)
    {
        (this.momentumDtype, this.varianceDtype) = (momentumDtype, varianceDtype);
        _defaults = new TorchSharp.Modules.AdamW.Options();
        _parameter_groups = [];
        foreach (var g in groups) add_param_group(g);
    }

    public override void add_param_group(ParamGroup group)
    {
        var options = (TorchSharp.Modules.AdamW.Options)group.Options;
        if (options.amsgrad == true || options.maximize == true) throw new ArgumentException("amsgrad and maximize are not implemented.");
        options.InitialLearningRate = options.LearningRate!.Value;
        _parameter_groups.Add(group);
        foreach (var p in group.Parameters)
        {
            var state = new State(p, momentumDtype, varianceDtype);
            state.Initialize(options);
            _state[p.Handle] = state;
        }
    }

    public override Tensor step(Func<Tensor>? closure = null)
    {
        using var noGrad = no_grad();
        foreach (var group in _parameter_groups)
        {
            var o = (TorchSharp.Modules.AdamW.Options)group.Options;
            double lr = o.LearningRate!.Value, beta1 = o.beta1!.Value, beta2 = o.beta2!.Value, eps = o.eps!.Value, decay = o.weight_decay!.Value;
            foreach (var p in group.Parameters)
            {
                // One scope per parameter: its temporaries are gone before the next parameter's are made.
                using var scope = NewDisposeScope();
                if (p.grad is not { } grad) continue;
                var s = (State)_state[p.Handle];
                s.step++;
                using (var shrink = (1 - lr * decay).ToScalar()) p.mul_(shrink);
                using var b1 = beta1.ToScalar();
                using var a1 = (1 - beta1).ToScalar();
                using var b2 = beta2.ToScalar();
                using var a2 = (1 - beta2).ToScalar();
                using var epsilon = eps.ToScalar();
                if (s.expAvg.dtype == p.dtype && s.expAvgSq.dtype == p.dtype)
                {
                    // PyTorch's single-tensor AdamW and TorchSharp's, with the corrections in double precision.
                    s.expAvg.mul_(b1).add_(grad, a1);
                    s.expAvgSq.mul_(b2).addcmul_(grad, grad, a2);
                    double correction1 = 1 - Math.Pow(beta1, s.step), correction2 = 1 - Math.Pow(beta2, s.step);
                    using var root = Math.Sqrt(correction2).ToScalar();
                    using var stepSize = (-lr / correction1).ToScalar();
                    p.addcdiv_(s.expAvg, s.expAvgSq.sqrt().div(root).add_(epsilon), stepSize);
                }
                else
                {
                    // AnyPrecisionAdamW ran on CUDA, whose kernels read a bfloat16 operand, compute with the float32 ones (the
                    // gradient, a scalar, a 0-dim tensor) in float32 and round once on the store. libtorch's CPU kernels do not:
                    // some round a scalar to bfloat16 first, and bf16.addcmul_(f32, f32) is refused. So each operation on a
                    // moment is written out as float32 arithmetic and one rounding, which gives CUDA's numbers on any device.
                    // Its step is a float32 tensor, so beta ** step, the corrections and lr / correction1 are float32 tensor
                    // arithmetic; lr / correction1 is Python's __rtruediv__, which PyTorch computes as reciprocal(correction1) * lr.
                    var t = tensor((float)s.step);
                    var correction1 = tensor(1f).sub(tensor((float)beta1).pow(t));
                    var root = tensor(1f).sub(tensor((float)beta2).pow(t)).sqrt();
                    using var learningRate = lr.ToScalar();
                    using var stepSize = (-(double)correction1.reciprocal().mul(learningRate).item<float>()).ToScalar();
                    // Those float32 copies are made a piece at a time, each freed before the next: whole, they would be several
                    // float32 copies of the parameter at once (4 GB for Qwen2.5-0.5B's embedding), more than bf16 moments save.
                    long size = p.numel();
                    using var flat = p.view(-1);
                    using var flatGrad = grad.reshape(-1);
                    using var flatAvg = s.expAvg.view(-1);
                    using var flatAvgSq = s.expAvgSq.view(-1);
                    for (long offset = 0; offset < size; offset += Piece)
                    {
                        using var pieceScope = NewDisposeScope();
                        long length = Math.Min(Piece, size - offset);
                        var (w, g, m, v) = (flat.narrow(0, offset, length), flatGrad.narrow(0, offset, length), flatAvg.narrow(0, offset, length), flatAvgSq.narrow(0, offset, length));
                        // Two float32 buffers and one in the variance's dtype, reused: copy_ into a bfloat16 moment is the rounding,
                        // copy_ out of it is exact.
                        var mf = m.to(ScalarType.Float32, copy: true);
                        var vf = v.to(ScalarType.Float32, copy: true);
                        m.copy_(mf.mul_(b1)); mf.copy_(m);
                        m.copy_(mf.add_(g, a1)); mf.copy_(m);
                        v.copy_(vf.mul_(b2)); vf.copy_(v);
                        v.copy_(vf.addcmul_(g, g, a2));
                        // The denominator is formed in the variance's dtype: sqrt(v) / sqrt(correction2) + eps, rounded after each step.
                        var d = v.sqrt();
                        d.copy_(vf.copy_(d).div_(root));
                        d.copy_(vf.copy_(d).add_(epsilon));
                        vf.copy_(d);
                        if (w.dtype == ScalarType.Float32) w.addcdiv_(mf, vf, stepSize);
                        else w.copy_(w.to(ScalarType.Float32).addcdiv_(mf, vf, stepSize)); // bfloat16 weights, as above
                    }
                }
            }
        }
        return null!;
    }

    /// <summary>The bytes the moments take (what bfloat16 moments halve).</summary>
    public long StateBytes => _parameter_groups.SelectMany(g => g.Parameters).Select(p => (State)_state[p.Handle]).Sum(s => s.expAvg.NumberOfElements * s.expAvg.ElementSize + s.expAvgSq.NumberOfElements * s.expAvgSq.ElementSize);

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        foreach (var (_, state) in _state) ((State)state).Dispose();
    }

    /// <summary>One parameter's step count and moments, saved as TorchSharp's <c>AdamW.State</c> saves them.</summary>
    sealed class State(Parameter parameter, ScalarType? momentumDtype, ScalarType? varianceDtype) : OptimizerState(parameter), IDisposable
    {
        public long step;
        public Tensor expAvg = null!, expAvgSq = null!;

        public override void Initialize(OptimizerOptions options)
        {
            Dispose();
            step = 0;
            expAvg = zeros_like(_parameter, dtype: momentumDtype ?? _parameter.dtype).DetachFromDisposeScope();
            expAvgSq = zeros_like(_parameter, dtype: varianceDtype ?? _parameter.dtype).DetachFromDisposeScope();
        }

        public override void SaveStateDict(BinaryWriter writer)
        {
            writer.Write(step);
            expAvg.Save(writer);
            expAvgSq.Save(writer);
            writer.Write(false); // TorchSharp's flag for an AMSGrad maximum, which this optimizer never keeps
        }

        public override void LoadStateDict(BinaryReader reader)
        {
            step = reader.ReadInt64();
            expAvg.Load(reader);
            expAvgSq.Load(reader);
            if (reader.ReadBoolean()) throw new InvalidDataException("the optimizer state holds an AMSGrad maximum, which AdamW here does not use.");
        }

        public override void LoadStateDict(OptimizerState source)
        {
            var other = (State)source;
            step = other.step;
            expAvg.copy_(other.expAvg);
            expAvgSq.copy_(other.expAvgSq);
        }

        public override void to(Device device)
        {
            expAvg = expAvg.to(device, disposeAfter: true);
            expAvgSq = expAvgSq.to(device, disposeAfter: true);
        }

        public void Dispose()
        {
            expAvg?.Dispose();
            expAvgSq?.Dispose();
        }
    }
}
