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
    public static void Apply(ParseResult r, Option<double?> option, PretrainedModel model) =>
        model.Model.Ilql = Apply(r.GetValue(option), model.Model.Ilql, model.Path);

    /// <summary>
    /// Attaches the heads of a T5 folder trained by <c>rlhf ilql</c> (loading a T5 leaves them off, so the training stages
    /// see the language model alone), then applies the option as for decoder-only models.
    /// </summary>
    public static void Apply(ParseResult r, Option<double?> option, PretrainedSeq2SeqModel model)
    {
        IlqlHeadsFile.AttachIfPresent(model.Model, model.Path);
        model.Model.Ilql = Apply(r.GetValue(option), model.Model.Ilql, model.Path);
    }

    static Models.IlqlDecoding? Apply(double? beta, Models.IlqlDecoding? ilql, string path)
    {
        if (ilql is null)
        {
            if (beta is not null) throw new RlhfException($"--ilql-beta: {path} has no ILQL heads ({IlqlHeadsFile.WeightsFile}, {IlqlHeadsFile.ConfigFile}).");
            return null;
        }
        if (beta is double b)
        {
            if (!double.IsFinite(b) || b < 0) throw new RlhfException($"--ilql-beta must be a finite number ≥ 0, got {b}.");
            ilql = ilql with { Beta = b };
        }
        Console.Error.WriteLine($"ILQL heads: decoding with log π + {ilql.Beta:0.###}·(Q − V)");
        return ilql;
    }
}
