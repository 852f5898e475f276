using TorchSharp;
using RlhfSharp.Lora;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// The position-wise feed-forward block: SwiGLU down(act(gate(x)) · up(x)) for the LLaMA family (Shazeer 2020),
/// down(act(up(x))) for GPT-2. LLaMA's gate and up projections are fused into one matmul.
/// </summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>, ILoraHost
{
#pragma warning disable IDE1006
    public readonly Linear up_proj;   // gated: [gate; up] stacked on the output axis
    public readonly Linear down_proj;
#pragma warning restore IDE1006
    LoraAdapter? upLora, downLora; // attached after loading (LoraModel.Attach), registered as <projection>_lora
    readonly bool gated;
    readonly string act;

    public Mlp(TransformerConfig c, ScalarType? dtype = null) : this(c, c.IntermediateSize, dtype) { }

    /// <param name="intermediateSize">The width: an expert's or a shared expert's in a mixture of experts (<see cref="SparseMoe"/>).</param>
    public Mlp(TransformerConfig c, int intermediateSize, ScalarType? dtype) : base(nameof(Mlp))
    {
        gated = c.Family == ModelFamily.Llama;
        act = c.HiddenAct;
        up_proj = nn.Linear(c.HiddenSize, (gated ? 2 : 1) * intermediateSize, hasBias: c.MlpBias, dtype: dtype);
        down_proj = nn.Linear(intermediateSize, c.HiddenSize, hasBias: c.MlpBias, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>Adds a LoRA adapter to <c>up_proj</c> (LLaMA: gate and up) or <c>down_proj</c>.</summary>
    public void AttachLora(string projection, LoraAdapter adapter)
    {
        switch (projection)
        {
            case "up_proj": upLora = adapter; break;
            case "down_proj": downLora = adapter; break;
            default: throw new ArgumentException($"the MLP has no projection '{projection}'");
        }
        register_module(projection + "_lora", adapter);
    }

    public override Tensor forward(Tensor x)
    {
        var h = up_proj.forward(x);
        if (upLora is not null) h = upLora.Add(x, h);
        if (gated)
        {
            var parts = h.chunk(2, -1);
            h = Activate(parts[0]) * parts[1];
        }
        else h = Activate(h);
        return downLora is null ? down_proj.forward(h) : downLora.Add(h, down_proj.forward(h));
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
