using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Lora;

/// <summary>
/// The two low-rank factors of one HF module's update, ΔW = B·A: <c>lora_A</c> (r × in) and <c>lora_B</c> (out × r),
/// the shapes PEFT saves as <c>….lora_A.weight</c> and <c>….lora_B.weight</c>.
/// </summary>
public sealed class LoraPair : nn.Module
{
#pragma warning disable IDE1006
    public Parameter lora_A;
    public Parameter lora_B;
#pragma warning restore IDE1006

    /// <summary>A starts as PEFT's (kaiming-uniform with a = √5, i.e. U(±1/√in)) and B as zeros, so ΔW = 0 at first.</summary>
    public LoraPair(long inFeatures, long outFeatures, int r, ScalarType dtype, Device device) : base(nameof(LoraPair))
    {
        lora_A = new Parameter(empty([r, inFeatures], dtype, device));
        lora_B = new Parameter(zeros([outFeatures, r], dtype, device));
        using (no_grad()) nn.init.kaiming_uniform_(lora_A, a: Math.Sqrt(5));
        RegisterComponents();
    }

    /// <summary>B·A (out × in).</summary>
    public Tensor Delta() => lora_B.matmul(lora_A);
}
