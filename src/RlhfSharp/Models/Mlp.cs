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
    readonly LoraSlots lora; // adapters attached after loading (LoraModel.Attach)
    readonly bool gated;
    readonly string act;

    public Mlp(TransformerConfig c, ScalarType? dtype = null) : this(c, c.IntermediateSize, dtype) { }

    /// <param name="intermediateSize">The width: an expert's or a shared expert's in a mixture of experts (<see cref="SparseMoe"/>).</param>
    public Mlp(TransformerConfig c, int intermediateSize, ScalarType? dtype) : base(nameof(Mlp))
    {
        gated = c.Family == ModelFamily.Llama;
        act = c.HiddenAct;
        up_proj = LayerInit.Linear(c.HiddenSize, (gated ? 2 : 1) * intermediateSize, hasBias: c.MlpBias, dtype);
        down_proj = LayerInit.Linear(intermediateSize, c.HiddenSize, hasBias: c.MlpBias, dtype);
        lora = new LoraSlots(this, "the MLP", (nameof(up_proj), up_proj), (nameof(down_proj), down_proj));
        RegisterComponents();
    }

    /// <summary>Adds a LoRA adapter to <c>up_proj</c> (LLaMA: gate and up) or <c>down_proj</c>.</summary>
    public void AttachLora(string projection, LoraAdapter adapter) => lora.Attach(projection, adapter);

    public override Tensor forward(Tensor x)
    {
        var h = lora.Forward(up_proj, x);
        if (gated)
        {
            var parts = h.chunk(2, -1);
            h = Activation.Apply(act, parts[0]) * parts[1];
        }
        else h = Activation.Apply(act, h);
        return lora.Forward(down_proj, h);
    }
}
