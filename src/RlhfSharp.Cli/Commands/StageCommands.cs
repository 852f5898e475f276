using System.CommandLine;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using RlhfSharp.Tokenization;
using RlhfSharp.Training;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// <c>rlhf sft</c>, <c>rlhf rm</c> and <c>rlhf ppo</c>: one InstructGPT stage at a time on your own data, driven by a
/// <see cref="StageRecipe"/> and <c>--set</c> overrides, in a run folder the stages share.
/// </summary>
public static class StageCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Stage("sft", "Supervised fine-tuning on demonstrations (loss on responses only).", RunSft);
        yield return Stage("rm", "Train a reward model on rankings or pairwise preferences (InstructGPT K-wise loss).", RunRm);
        yield return Stage("ppo", "PPO against the reward model with a per-token KL penalty to the SFT model.", RunPpo);
        yield return Stage("rs", "Rejection-sampling fine-tuning: best-of-n samples picked by the reward model, distilled by SFT, repeated.", RunRs, dataParallel: false);
        yield return Stage("online-dpo", "Online DPO: pairs sampled from the current policy, labelled by the reward model, a DPO pass each round.", RunOnlineDpo, "online_dpo", dataParallel: false);
    }

    internal delegate Dictionary<string, double> StageBody(StageRecipe recipe, PretrainedModel model, RunStages stages, CancellationToken cancel);

    /// <param name="folder">The stage's folder in the run when it differs from the command's name.</param>
    /// <param name="dataParallel">Whether the stage trains data-parallel under <c>mpirun</c> (docs/distributed.md); the
    /// others refuse more than one rank rather than train N copies side by side.</param>
    internal static Command Stage(string name, string description, StageBody body, string? folder = null, bool dataParallel = true)
    {
        var recipe = new Option<string?>("--recipe", "-r") { Description = "Recipe file (JSON), e.g. recipes/hh-rlhf.json." };
        var set = new Option<string[]>("--set") { Description = $"Override a recipe value, e.g. --set {name}.epochs=1 (repeatable)." };
        var output = new Option<string?>("--out", "-o") { Description = "Run folder shared by the stages (default runs/<recipe name>)." };
        var resume = new Option<bool>("--resume") { Description = "Continue a stopped stage from its checkpoint." };
        var skipInvalid = new Option<bool>("--skip-invalid") { Description = "Skip and count malformed records instead of stopping at the first (recipe key skip_invalid)." };
        var command = new Command(name, description) { recipe, set, output, resume, skipInvalid };
        command.SetAction(r => Program.Run(() =>
        {
            if (!dataParallel && DataParallel.Size > 1)
                throw new RlhfException($"rlhf {name} does not train data-parallel yet: run it without mpirun (data-parallel: sft, rm, ppo, the dpo family and the grpo family).");
            var config = Recipe.Load<StageRecipe>(r.GetValue(recipe), [.. r.GetValue(set) ?? [], .. r.GetValue(skipInvalid) ? ["skip_invalid=true"] : Array.Empty<string>()]);
            string dir = r.GetValue(output) ?? Path.Combine("runs", config.Name);
            var state = new StageState(Path.Combine(dir, folder ?? name));
            if (state.IsDone && !r.GetValue(resume)) throw new RlhfException($"{state.Dir} is already done: remove it to train again.");
            if (state.IsDone) { Console.WriteLine($"{folder ?? name}: already done ({state.CheckpointDir})"); return 0; }
            if (state.SavedStep is not null && !r.GetValue(resume)) throw new RlhfException($"{state.Dir} holds a stopped run: pass --resume to continue it.");
            string recipeFile = Path.Combine(state.Dir, "recipe.json"), resolved = Recipe.Serialize(config);
            if (state.SavedStep is not null && File.Exists(recipeFile) && Recipe.FirstDifference(File.ReadAllText(recipeFile), resolved) is string key)
                throw new RlhfException($"{recipeFile}: the stopped run was trained with a different '{key}': resume with the same recipe and --set values (a resumed run must repeat the uninterrupted one), or start a new --out.");
            Durable.CheckWritable(state.Dir);
            using var model = PretrainedModel.Load(config.Model);
            var result = WithIntactCheckpoint(state, () => ConsoleProgress.Run((progress, log, cancel) =>
            {
                var started = DateTime.UtcNow;
                // The recipe is written once the first step is done: a command that stops on bad input leaves the run folder as it was.
                var stages = new RunStages(model, dir) { Progress = new FirstReport(progress, () => { if (DataParallel.IsRoot) Durable.WriteAllText(recipeFile, resolved); }) };
                var numbers = body(config, model, stages, cancel);
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

    /// <summary>A data path from the recipe: as given, else relative to the installation (where the shipped samples are).</summary>
    internal static string Require(string? path, string key)
    {
        if (path is null) throw new RlhfException($"the recipe has no '{key}': set it in the recipe or with --set {key}=FILE.");
        string shipped = Path.Combine(AppContext.BaseDirectory, path);
        return !File.Exists(path) && File.Exists(shipped) ? shipped : path;
    }

    internal static IReadOnlyList<T> Take<T>(LoadResult<T> loaded, StageRecipe recipe, string file)
    {
        if (loaded.Skipped > 0) Console.Error.WriteLine($"{file}: skipped {loaded.Skipped} invalid records");
        if (loaded.Records.Count == 0)
            throw new RlhfException($"{file}: no records{(loaded.Skipped > 0 ? $" ({loaded.Skipped} skipped as invalid)" : " (the file is empty)")}.");
        return recipe.MaxRecords > 0 ? loaded.Records.Take(recipe.MaxRecords).ToList() : loaded.Records;
    }

    static List<SftExample> Demonstrations(StageRecipe recipe, PretrainedModel model, string path)
    {
        var demos = Take(DatasetLoader.LoadDemonstrations(path, recipe.Fields, recipe.SkipInvalid), recipe, path);
        ChatTemplate? template = demos.Any(d => d.Messages is not null)
            ? (Directory.Exists(model.Path) ? ChatTemplate.ForModel(model.Path, null) : ChatTemplate.FromName("plain"))
            : null;
        return demos.Select(d => SftExample.Create(model.Tokenizer, d, recipe.Sft.MaxLength, model.AddsBos, template)).ToList();
    }

    /// <summary>The HF folder a later stage starts from: a run's checkpoint, else the base model (written as HF once if it is not one).</summary>
    internal static string StartingPoint(RunStages stages, PretrainedModel model, string stage)
    {
        if (Directory.Exists(stages.Checkpoint(stage))) return stages.Checkpoint(stage);
        if (Directory.Exists(model.Path)) return model.Path;
        if (!Directory.Exists(stages.Checkpoint("base")) && DataParallel.IsRoot)
            HuggingFaceCheckpoint.Save(model.Model, stages.Checkpoint("base"), writeExtras: model.WriteTokenizerFiles);
        DataParallel.Barrier(); // the other ranks read what rank 0 wrote
        return stages.Checkpoint("base");
    }

    static Dictionary<string, double> RunSft(StageRecipe recipe, PretrainedModel model, RunStages stages, CancellationToken cancel)
    {
        string path = Require(recipe.SftData, "sft_data");
        var (train, eval) = RunStages.HoldOut(Demonstrations(recipe, model, path));
        return stages.Sft(recipe.Sft, train, eval, cancel);
    }

    static Dictionary<string, double> RunRm(StageRecipe recipe, PretrainedModel model, RunStages stages, CancellationToken cancel)
    {
        string path = Require(recipe.RmData, "rm_data");
        var rankings = Take(DatasetLoader.LoadRankings(path, recipe.Fields, recipe.SkipInvalid), recipe, path);
        var (train, eval) = RunStages.HoldOut(stages.Tokenize(rankings, recipe.Rm.MaxLength));
        // InstructGPT centres the RM on SFT demonstrations; without SFT data, the preferred responses stand in for them.
        var demonstrations = recipe.SftData is not null
            ? Demonstrations(recipe, model, Require(recipe.SftData, "sft_data")).Select(d => stages.EndWithEos(d.InputIds, recipe.Rm.MaxLength)).ToList()
            : train.Select(g => g.Sequences[0]).ToList();
        return stages.RewardModel(recipe.Rm, StartingPoint(stages, model, "sft"), train, eval, demonstrations, cancel);
    }

    static Dictionary<string, double> RunRs(StageRecipe recipe, PretrainedModel model, RunStages stages, CancellationToken cancel) =>
        stages.RejectionSampling(recipe.Rs, StartingPoint(stages, model, "sft"), stages.Checkpoint("rm"), OnlinePrompts(recipe, model), cancel, recipe.Rewards);

    static Dictionary<string, double> RunOnlineDpo(StageRecipe recipe, PretrainedModel model, RunStages stages, CancellationToken cancel) =>
        stages.OnlineDpo(recipe.OnlineDpo, StartingPoint(stages, model, "sft"), stages.Checkpoint("rm"), OnlinePrompts(recipe, model), cancel, recipe.Rewards);

    /// <summary>The run's reward model, which PPO's critic starts from.</summary>
    internal static string RewardModel(RunStages stages) => Directory.Exists(stages.Checkpoint("rm"))
        ? stages.Checkpoint("rm")
        : throw new RlhfException($"{stages.Checkpoint("rm")} not found: run 'rlhf rm' with the same --out first.");

    /// <summary>Prompts for online stages from <c>ppo_prompts</c>; long ones keep their end (the latest turns).</summary>
    internal static List<int[]> OnlinePrompts(StageRecipe recipe, PretrainedModel model)
    {
        string path = Require(recipe.PpoPrompts, "ppo_prompts");
        return Take(DatasetLoader.LoadPrompts(path, recipe.Fields, recipe.SkipInvalid), recipe, path)
            .Select(p => model.EncodePrompt(p.Prompt) is var ids && ids.Length > recipe.MaxPromptTokens ? ids[^recipe.MaxPromptTokens..] : ids)
            .ToList();
    }

    static Dictionary<string, double> RunPpo(StageRecipe recipe, PretrainedModel model, RunStages stages, CancellationToken cancel)
    {
        string rm = recipe.Ppo.Critic == Algorithms.Ppo.CriticKind.SeparateFromRewardModel ? RewardModel(stages) : stages.Checkpoint("rm");
        var prompts = OnlinePrompts(recipe, model);
        var ptxPath = recipe.PtxData ?? recipe.SftData;
        var ptx = ptxPath is null || recipe.Ppo.PtxCoef == 0 ? [] : Demonstrations(recipe, model, Require(ptxPath, "ptx_data"));
        return stages.Ppo(recipe.Ppo, StartingPoint(stages, model, "sft"), rm, prompts, ptx, null, cancel, recipe.Rewards);
    }
}
