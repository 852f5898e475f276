using System.CommandLine;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Cli.Commands;

/// <summary><c>--dtype</c>: the element type a command holds its model in, whatever the checkpoint stores.</summary>
public static class DtypeOption
{
    /// <summary>A new <c>--dtype</c> option (default float32, as transformers' <c>from_pretrained</c>).</summary>
    public static Option<string> Create() => new("--dtype")
    {
        Description = $"Hold the weights in this type: {ModelDtype.Names}. bf16 halves the memory and is faster on CPUs with AVX512-BF16.",
        DefaultValueFactory = _ => "float32",
    };

    /// <summary>The dtype given on the command line; an unknown name is an error naming the option.</summary>
    public static ScalarType Read(ParseResult r, Option<string> option) => ModelDtype.Parse(r.GetValue(option)!, "--dtype");
}
