using System.CommandLine;
using RlhfSharp.Algorithms.Dpo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Pipeline;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// <c>rlhf dpo|ipo|simpo|orpo|kto</c>: offline preference optimisation on a <see cref="StageRecipe"/>'s
/// <c>dpo_data</c>, in the same run folder as <c>rlhf sft</c>, starting from its checkpoint when there is one.
/// </summary>
public static class PreferenceCommands
{
    public static IEnumerable<Command> Create()
    {
        // `dpo` keeps the recipe's cDPO choice (label smoothing) and otherwise means the sigmoid loss.
        yield return Pairs("dpo", "DPO on preference pairs against the frozen SFT model (cDPO with dpo.loss=cdpo).",
            loss => loss is PreferenceLossKind.Cdpo ? loss : PreferenceLossKind.Sigmoid);
        yield return Pairs("ipo", "IPO: a squared loss on length-averaged log-ratios that does not overfit deterministic preferences.", _ => PreferenceLossKind.Ipo);
        yield return Pairs("simpo", "SimPO: reference-free, length-averaged log-probs with a target margin.", _ => PreferenceLossKind.Simpo);
        yield return Pairs("orpo", "ORPO: NLL on the chosen response plus an odds-ratio penalty, no reference model.", _ => PreferenceLossKind.Orpo);
        yield return StageCommands.Stage("kto", "KTO on completions labelled desirable or undesirable (preference pairs are unpaired).", RunKto);
    }

    static Command Pairs(string name, string description, Func<PreferenceLossKind, PreferenceLossKind> loss) =>
        StageCommands.Stage(name, description, (recipe, model, stages, cancel) =>
        {
            var config = recipe.Dpo with { Loss = loss(recipe.Dpo.Loss) };
            string path = Data(recipe);
            var pairs = StageCommands.Take(DatasetLoader.LoadPreferences(path, recipe.Fields, recipe.SkipInvalid), recipe, path)
                .Select(p => PreferenceExample.Create(model.Tokenizer, p, config.MaxLength, config.MaxPromptLength, model.AddsBos)).ToList();
            var (train, eval) = RunStages.HoldOut(pairs);
            return stages.Preference(config, StageCommands.StartingPoint(stages, model, "sft"), train, eval, cancel);
        });

    static Dictionary<string, double> RunKto(StageRecipe recipe, PretrainedModel model, RunStages stages, CancellationToken cancel)
    {
        var config = recipe.Dpo with { Loss = PreferenceLossKind.Kto };
        string path = Data(recipe);
        var labeled = StageCommands.Take(DatasetLoader.LoadLabeled(path, recipe.Fields, recipe.SkipInvalid), recipe, path)
            .Select(l => LabeledExample.Create(model.Tokenizer, l, config.MaxLength, config.MaxPromptLength, model.AddsBos)).ToList();
        // Held out per label, so both splits keep both labels and TRL's order (desirable, then undesirable) that keeps
        // KTO's mismatched KL pairs off a prompt's own other answer (LabeledCompletion.Unpair).
        var (trainDesirable, evalDesirable) = RunStages.HoldOut(labeled.Where(l => l.Label).ToList());
        var (trainUndesirable, evalUndesirable) = RunStages.HoldOut(labeled.Where(l => !l.Label).ToList());
        return stages.Kto(config, StageCommands.StartingPoint(stages, model, "sft"), [.. trainDesirable, .. trainUndesirable],
            [.. evalDesirable, .. evalUndesirable], cancel);
    }

    static string Data(StageRecipe recipe) => StageCommands.Require(recipe.DpoData ?? recipe.RmData, "dpo_data");
}
