using TorchSharp.Modules;

namespace RlhfSharp.Models;

/// <summary>
/// The activation functions HF configs name (<c>hidden_act</c>, <c>activation_function</c>, T5's
/// <c>feed_forward_proj</c>), as transformers' <c>ACT2FN</c> maps them: one table for every family's feed-forward block.
/// </summary>
public static class Activation
{
    /// <summary>The names <see cref="Apply"/> takes, for errors that list them.</summary>
    public const string Names = "silu, gelu_new, gelu_pytorch_tanh, gelu, relu";

    public static bool IsSupported(string name) => name is "silu" or "gelu_new" or "gelu_pytorch_tanh" or "gelu" or "relu";

    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "silu" => nn.functional.silu(x),
        // gelu_new (GPT-2, T5 v1.1) is the tanh approximation of GELU (Hendrycks & Gimpel 2016, Eq. 2).
        "gelu_new" or "gelu_pytorch_tanh" => nn.functional.gelu(x, GELU.Approximate.tanh),
        "gelu" => nn.functional.gelu(x),
        "relu" => nn.functional.relu(x),
        _ => throw new RlhfException($"activation '{name}' is not supported (supported: {Names})"),
    };
}
