using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.T5;

/// <summary>
/// transformers v4.44 modeling_t5.py <c>T5ClassificationHead</c>: <c>out_proj(tanh(dense(x)))</c>, both projections with
/// a bias. HF's dropout (<c>classifier_dropout</c>, 0.0 by default) sits before each projection; it is not applied here,
/// and a nonzero one is refused when the model is loaded (T5Checkpoint); the body's <c>dropout_rate</c> is applied (T5Stack).
/// </summary>
public sealed class T5ClassificationHead : nn.Module
{
#pragma warning disable IDE1006 // HF parameter names
    public readonly Linear dense;
    public readonly Linear out_proj;
#pragma warning restore IDE1006

    public T5ClassificationHead(int dModel, int numLabels, ScalarType? dtype = null) : base(nameof(T5ClassificationHead))
    {
        dense = nn.Linear(dModel, dModel, hasBias: true, dtype: dtype);
        out_proj = nn.Linear(dModel, numLabels, hasBias: true, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>(…, d_model) → (…, labels).</summary>
    public Tensor Forward(Tensor hidden) => out_proj.forward(tanh(dense.forward(hidden)));

    /// <summary>
    /// A new head as HF's <c>_init_weights</c> starts one (T5PreTrainedModel, initializer_factor 1): both weights
    /// normal(0, d_model^-0.5), biases zero; from the caller's seed.
    /// </summary>
    public void Initialize(double initializerFactor = 1.0)
    {
        using var _ = no_grad();
        double std = initializerFactor * Math.Pow(dense.weight!.shape[1], -0.5);
        nn.init.normal_(dense.weight!, 0, std);
        nn.init.zeros_(dense.bias!);
        nn.init.normal_(out_proj.weight!, 0, std);
        nn.init.zeros_(out_proj.bias!);
    }
}
