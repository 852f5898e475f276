using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// The position-wise feed-forward block: SwiGLU down(act(gate(x)) · up(x)) for the LLaMA family (Shazeer 2020),
/// down(act(up(x))) for GPT-2. LLaMA's gate and up projections are fused into one matmul.
/// </summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    public readonly Linear up_proj;   // gated: [gate; up] stacked on the output axis
    public readonly Linear down_proj;
#pragma warning restore IDE1006
    readonly bool gated;
    readonly string act;

    public Mlp(TransformerConfig c) : base(nameof(Mlp))
    {
        gated = c.Family == ModelFamily.Llama;
        act = c.HiddenAct;
        up_proj = nn.Linear(c.HiddenSize, (gated ? 2 : 1) * c.IntermediateSize, hasBias: c.MlpBias);
        down_proj = nn.Linear(c.IntermediateSize, c.HiddenSize, hasBias: c.MlpBias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var h = up_proj.forward(x);
        if (gated)
        {
            var parts = h.chunk(2, -1);
            h = Activate(parts[0]) * parts[1];
        }
        else h = Activate(h);
        return down_proj.forward(h);
    }

    Tensor Activate(Tensor x) => act switch
    {
        "silu" => nn.functional.silu(x),
        // gelu_new (GPT-2) is the tanh approximation of GELU (Hendrycks & Gimpel 2016, Eq. 2).
        "gelu_new" or "gelu_pytorch_tanh" => nn.functional.gelu(x, GELU.Approximate.tanh),
        "gelu" => nn.functional.gelu(x),
        "relu" => nn.functional.relu(x),
        _ => throw new RlhfException($"activation '{act}' is not supported"),
    };
}
