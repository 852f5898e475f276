using System.CommandLine;
using RlhfSharp.Checkpoints;
using RlhfSharp.Distributed;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using RlhfSharp.Training;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// <c>rlhf sft</c>, <c>rlhf rm</c> and one command per row of the <see cref="MethodTable"/> (<c>ppo</c>, <c>dpo</c>, …,
/// <c>online-dpo</c>): one stage at a time on your own data, driven by a <see cref="StageRecipe"/> and <c>--set</c>
/// overrides, in a run folder the stages share. <see cref="RecipeData"/> turns the recipe's files into examples; this
/// file only parses, checks the run folder and prints.
/// </summary>
public static class StageCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Stage("sft", "Supervised fine-tuning on demonstrations (loss on responses only).", "sft.epochs=1", (recipe, data, stages, cancel) =>
        {
            var (train, eval) = data.Sft();
            return stages.Sft(recipe.Sft, train, eval, cancel);
        });
        yield return Stage("rm", "Train a reward model on rankings or pairwise preferences (InstructGPT K-wise loss).", "rm.epochs=1", (recipe, data, stages, cancel) =>
        {
            var (train, eval, centering) = data.RewardModel();
            return stages.RewardModel(recipe.Rm, stages.StartingPoint("sft"), train, eval, centering, cancel);
        });
        yield return Stage("prm", "Train a process reward model on step-labelled completions (TRL PRMTrainer: a score at each step's separator).", "prm.epochs=1", (recipe, data, stages, cancel) =>
        {
            var (train, eval) = data.ProcessRewardModel();
            return stages.ProcessRewardModel(recipe.Prm, stages.StartingPoint("sft"), RlhfSharp.Rewards.StepSplit.Separator, train, eval, cancel);
        }, dataParallel: false);
        // The alignment methods, as rlhf pipeline --algo runs them.
        foreach (var method in MethodTable.All)
            yield return Stage(method.Command, method.Description, SetExample(method.Method), (recipe, data, stages, cancel) => method.Run(recipe, data.ForMethods(), stages, cancel),
                method.Stage, method.DataParallel);
    }

    /// <summary>A <c>--set</c> example for the help of a method's command: a key of the section it reads (rlhf ipo reads dpo.*).</summary>
    static string SetExample(AlignmentMethod method) => method switch
    {
        AlignmentMethod.Ppo => "ppo.steps=20",
        AlignmentMethod.Dpo or AlignmentMethod.Ipo or AlignmentMethod.Kto or AlignmentMethod.Orpo or AlignmentMethod.Simpo => "dpo.epochs=1",
        AlignmentMethod.Rs => "rs.iterations=1",
        AlignmentMethod.OnlineDpo => "online_dpo.iterations=1",
        AlignmentMethod.A2c => "ppo.steps=20",
        AlignmentMethod.Nlpo => "nlpo.top_mask=0.9",
        AlignmentMethod.Ilql => "ilql.epochs=1",
        _ => "grpo.steps=20",
    };

    internal delegate Dictionary<string, double> StageBody(StageRecipe recipe, RecipeData data, RunStages stages, CancellationToken cancel);

    /// <param name="folder">The stage's folder in the run when it differs from the command's name.</param>
    /// <param name="dataParallel">Whether the stage trains data-parallel under <c>mpirun</c> (docs/distributed.md); the
    /// others refuse more than one rank rather than train N copies side by side.</param>
    /// <param name="setExample">The <c>--set</c> example of the help: a key this command reads (help examples are run by CliHelpExampleTests).</param>
    internal static Command Stage(string name, string description, string setExample, StageBody body, string? folder = null, bool dataParallel = true)
    {
        var recipe = new Option<string?>("--recipe", "-r") { Description = "Recipe file (JSON), e.g. recipes/hh-rlhf.json." };
        var set = new Option<string[]>("--set") { Description = $"Override a recipe value, e.g. --set {setExample} (repeatable)." };
        var check = new Option<bool>("--check") { Description = "Check the recipe and --set values, print the resolved recipe, and stop (nothing is loaded or written)." };
        var output = new Option<string?>("--out", "-o") { Description = "Run folder shared by the stages (default runs/<recipe name>)." };
        var resume = new Option<bool>("--resume") { Description = "Continue a stopped stage from its checkpoint." };
        var skipInvalid = new Option<bool>("--skip-invalid") { Description = "Skip and count malformed records instead of stopping at the first (recipe key skip_invalid)." };
        var command = new Command(name, description) { recipe, set, output, resume, skipInvalid, check };
        command.SetAction(r => Program.Run(() =>
        {
            if (!dataParallel && DataParallel.Size > 1)
                throw new RlhfException($"rlhf {name} does not train data-parallel yet: run it without mpirun (data-parallel: sft, rm, ppo, the dpo family and the grpo family).");
            var config = Recipe.Load<StageRecipe>(r.GetValue(recipe), [.. r.GetValue(set) ?? [], .. r.GetValue(skipInvalid) ? ["skip_invalid=true"] : Array.Empty<string>()],
                note: Console.Error.WriteLine);
            if (r.GetValue(check)) { Console.WriteLine(Recipe.Serialize(config)); return 0; }
            string dir = r.GetValue(output) ?? Path.Combine("runs", config.Name);
            var state = new StageState(Path.Combine(dir, folder ?? name));
            if (state.IsDone && !r.GetValue(resume)) throw new RlhfException($"{state.Dir} is already done: remove it to train again.");
            if (state.IsDone) { Console.WriteLine($"{folder ?? name}: already done ({state.CheckpointDir})"); return 0; }
            if (state.SavedStep is not null && !r.GetValue(resume)) throw new RlhfException($"{state.Dir} holds a stopped run: pass --resume to continue it.");
            string recipeFile = Path.Combine(state.Dir, "recipe.json"), resolved = Recipe.Serialize(config);
            if (state.SavedStep is not null && File.Exists(recipeFile) && Recipe.FirstDifference(File.ReadAllText(recipeFile), resolved) is string key)
                throw new RlhfException($"{recipeFile}: the stopped run was trained with a different '{key}': resume with the same recipe and --set values (a resumed run must repeat the uninterrupted one), or start a new --out.");
            Durable.CheckWritable(state.Dir);
            if (PretrainedSeq2SeqModel.IsSeq2Seq(config.Model))
            {
                // An encoder-decoder (T5): Pipeline/Seq2SeqSftStage.cs, Seq2SeqRewardStage.cs, Seq2SeqDpoStage.cs, Seq2SeqPpoStage.cs,
                // Seq2SeqGroupRlStage.cs and Seq2SeqIlqlStage.cs.
                bool groupRl = name is "grpo" or "rloo" or "reinforce-pp" or "reinforce-pp-baseline" or "remax";
                if (!groupRl && name is not ("sft" or "rm" or "dpo" or "ipo" or "kto" or "simpo" or "orpo" or "ppo" or "nlpo" or "ilql"))
                    throw new RlhfException($"rlhf {name} does not support encoder-decoder (T5) models yet; a T5 model trains with rlhf sft, rm, dpo (also loss cdpo), ipo, kto, simpo, orpo, ppo, nlpo, grpo, rloo, reinforce-pp, reinforce-pp-baseline, remax and ilql.");
                using var seq2seq = PretrainedSeq2SeqModel.Load(config.Model);
                var numbers = WithIntactCheckpoint(state, () => ConsoleProgress.Run((progress, log, cancel) =>
                {
                    var started = DateTime.UtcNow;
                    var first = new FirstReport(progress, () => { if (DataParallel.IsRoot) Durable.WriteAllText(recipeFile, resolved); });
                    var n = name == "sft" ? Seq2SeqSftStage.Run(config, seq2seq, state, first, Console.Error.WriteLine, cancel)
                        : name == "rm" ? Seq2SeqRewardStage.Run(config, seq2seq, dir, state, first, Console.Error.WriteLine, cancel)
                        : groupRl ? Seq2SeqGroupRlStage.Run(config, seq2seq, dir, Seq2SeqGroupRlStage.EstimatorOf(name), state, first, Console.Error.WriteLine, cancel)
                        : name == "ilql" ? Seq2SeqIlqlStage.Run(config, seq2seq, dir, state, first, Console.Error.WriteLine, cancel)
                        : name is "ppo" or "nlpo" ? Seq2SeqPpoStage.Run(config, seq2seq, dir, state, first, Console.Error.WriteLine, cancel, name == "nlpo" ? config.Nlpo : null)
                        : Seq2SeqDpoStage.Run(config, seq2seq, dir, name == "ipo" ? Algorithms.Preference.PreferenceLossKind.Ipo
                            : name == "kto" ? Algorithms.Preference.PreferenceLossKind.Kto
                            : name == "simpo" ? Algorithms.Preference.PreferenceLossKind.Simpo : name == "orpo" ? Algorithms.Preference.PreferenceLossKind.Orpo
                            : config.Dpo.Loss, // rlhf dpo: the recipe's dpo.loss (sigmoid by default; kto is refused by the pair trainer: use rlhf kto)
                            state, first, Console.Error.WriteLine, cancel);
                    n["seconds"] = (DateTime.UtcNow - started).TotalSeconds;
                    state.MarkDone(n);
                    return n;
                }));
                foreach (var (k, v) in numbers) Console.WriteLine($"{k}: {Recipe.Format(v)}");
                Console.WriteLine($"checkpoint: {state.CheckpointDir}");
                return 0;
            }
            using var model = PretrainedModel.Load(config.Model);
            var result = WithIntactCheckpoint(state, () => ConsoleProgress.Run((progress, log, cancel) =>
            {
                var started = DateTime.UtcNow;
                // The recipe is written once the first step is done: a command that stops on bad input leaves the run folder as it was.
                var stages = new RunStages(model, dir) { Progress = new FirstReport(progress, () => { if (DataParallel.IsRoot) Durable.WriteAllText(recipeFile, resolved); }) };
                var data = new RecipeData(config, model, stages) { Warn = Console.Error.WriteLine };
                var numbers = body(config, data, stages, cancel);
                numbers["seconds"] = (DateTime.UtcNow - started).TotalSeconds;
                state.MarkDone(numbers);
                return numbers;
            }));
            foreach (var (k, v) in result) Console.WriteLine($"{k}: {Recipe.Format(v)}");
            Console.WriteLine($"checkpoint: {state.CheckpointDir}");
            return 0;
        }));
        return command;
    }

    /// <summary>A write that fails mid-stage (disk full, folder gone read-only) is reported with the checkpoint a resume would use.</summary>
    static T WithIntactCheckpoint<T>(StageState state, Func<T> body)
    {
        try { return body(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string intact = state.SavedStep is int s
                ? $"the last good checkpoint (step {s}) is intact in {state.StateDir}: free space, then rerun with --resume"
                : "no checkpoint was written yet";
            throw new RlhfException($"{e.Message}: the disk may be full or the folder not writable; {intact}.");
        }
    }

    /// <summary>Passes reports on, running an action once before the first.</summary>
    sealed class FirstReport(IProgress<TrainingProgress> inner, Action first) : IProgress<TrainingProgress>
    {
        bool seen;
        public void Report(TrainingProgress value)
        {
            if (!seen) { seen = true; first(); }
            inner.Report(value);
        }
    }
}
