using System.CommandLine;
using RlhfSharp.Checkpoints;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// <c>--ilql-beta</c>: β of ILQL decoding (log π + β·(Q − V)) for a model folder that holds ILQL heads
/// (Checkpoints/IlqlHeadsFile); without it the β saved with the heads is used, 0 decodes with the language model alone.
/// </summary>
public static class IlqlBetaOption
{
    public static Option<double?> Create() => new("--ilql-beta")
    {
        Description = "For a model trained by 'rlhf ilql': β of decoding, log π + β·(Q − V) (default: the β saved with the heads; 0 = the LM alone).",
    };

    /// <summary>Applies the option to a loaded model and says on stderr how it decodes; refuses the option for a model without heads.</summary>
    public static void Apply(ParseResult r, Option<double?> option, PretrainedModel model)
    {
        double? beta = r.GetValue(option);
        if (model.Model.Ilql is null)
        {
            if (beta is not null) throw new RlhfException($"--ilql-beta: {model.Path} has no ILQL heads ({IlqlHeadsFile.WeightsFile}, {IlqlHeadsFile.ConfigFile}).");
            return;
        }
        if (beta is double b)
        {
            if (!double.IsFinite(b) || b < 0) throw new RlhfException($"--ilql-beta must be a finite number ≥ 0, got {b}.");
            model.Model.Ilql = model.Model.Ilql with { Beta = b };
        }
        Console.Error.WriteLine($"ILQL heads: decoding with log π + {model.Model.Ilql.Beta:0.###}·(Q − V)");
    }
}
