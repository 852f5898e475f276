using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// The element types a model can be held in, by the names users type (<c>--dtype</c>, a recipe's <c>dtype</c>):
/// transformers' <c>torch_dtype</c> spellings (float32, bfloat16, float16) and the usual short forms.
/// </summary>
public static class ModelDtype
{
    /// <summary>The names accepted, for help texts.</summary>
    public const string Names = "float32 (f32, fp32), bfloat16 (bf16), float16 (f16, fp16)";

    /// <summary>The dtype a name stands for; <paramref name="source"/> (an option or key) is named in the error.</summary>
    public static ScalarType Parse(string name, string source) => name.Trim().ToLowerInvariant() switch
    {
        "float32" or "f32" or "fp32" or "float" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "f16" or "fp16" or "half" => ScalarType.Float16,
        _ => throw new RlhfException($"{source}: unknown dtype '{name}' (use {Names})."),
    };

    /// <summary>The canonical name (transformers' <c>torch_dtype</c>).</summary>
    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32", ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16",
        _ => dtype.ToString(),
    };
}
