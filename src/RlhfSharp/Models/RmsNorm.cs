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
    readonly bool plusOne;

    /// <param name="dtype">Element type of the weight (default: float32).</param>
    /// <param name="plusOne">Gemma's norm: scale by (1 + weight) in float32, the weight starting at zero (GemmaRMSNorm, v4.44).</param>
    public RmsNorm(int size, double eps, ScalarType? dtype = null, bool plusOne = false) : base(nameof(RmsNorm))
    {
        weight = new TorchSharp.Modules.Parameter(plusOne ? zeros(size, dtype ?? ScalarType.Float32) : ones(size, dtype ?? ScalarType.Float32));
        this.eps = eps;
        this.plusOne = plusOne;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (plusOne)
        {
            // Gemma casts to float32 for the whole product and casts back once (not weight · normed.to(dtype) as LLaMA).
            var x32 = x.to(ScalarType.Float32);
            var y = x32 * (x32.square().mean([-1L], keepdim: true) + eps).rsqrt() * (weight.to(ScalarType.Float32) + 1.0);
            return y.to(x.dtype);
        }
        if (x.dtype == ScalarType.Float32)
            return x * (x.square().mean([-1L], keepdim: true) + eps).rsqrt() * weight;
        var xf = x.to(ScalarType.Float32);
        var normed = xf * (xf.square().mean([-1L], keepdim: true) + eps).rsqrt();
        return weight * normed.to(x.dtype);
    }
}
