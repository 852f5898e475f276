using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// RMSNorm (Zhang &amp; Sennrich 2019) as HF LLaMA computes it: x / sqrt(mean(x²) + eps) · w, in float32
/// even when the weights are bf16, then cast back.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // HF parameter names
    public readonly TorchSharp.Modules.Parameter weight;
#pragma warning restore IDE1006
    readonly double eps;

    /// <param name="dtype">Element type of the weight (default: float32).</param>
    public RmsNorm(int size, double eps, ScalarType? dtype = null) : base(nameof(RmsNorm))
    {
        weight = new TorchSharp.Modules.Parameter(ones(size, dtype ?? ScalarType.Float32));
        this.eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (x.dtype == ScalarType.Float32)
            return x * (x.square().mean([-1L], keepdim: true) + eps).rsqrt() * weight;
        var xf = x.to(ScalarType.Float32);
        var normed = xf * (xf.square().mean([-1L], keepdim: true) + eps).rsqrt();
        return weight * normed.to(x.dtype);
    }
}
