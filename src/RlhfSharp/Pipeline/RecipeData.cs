using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Pipeline;

/// <summary>
/// The data the stage commands train on, read from a <see cref="StageRecipe"/>'s files: loading (with
/// <c>skip_invalid</c> and <c>max_records</c>), tokenising for the model, and the held-out tenth. The CLI only parses
/// arguments and prints; this is where a file becomes examples.
/// </summary>
public sealed class RecipeData(StageRecipe recipe, PretrainedModel model, RunStages stages)
{
    /// <summary>Told about records skipped as invalid (the CLI prints it to stderr).</summary>
    public Action<string>? Warn { get; init; }

    /// <summary>A data path from the recipe: as given, else relative to the installation (where the shipped samples are).</summary>
    public static string Require(string? path, string key)
    {
        if (path is null) throw new RlhfException($"the recipe has no '{key}': set it in the recipe or with --set {key}=FILE.");
        string shipped = Path.Combine(AppContext.BaseDirectory, path);
        return !File.Exists(path) && File.Exists(shipped) ? shipped : path;
    }

    /// <summary>The records of a file, at most <see cref="StageRecipe.MaxRecords"/>; none is an error.</summary>
    public IReadOnlyList<T> Take<T>(LoadResult<T> loaded, string file)
    {
        if (loaded.Skipped > 0) Warn?.Invoke($"{file}: skipped {loaded.Skipped} invalid records");
        if (loaded.Records.Count == 0)
            throw new RlhfException($"{file}: no records{(loaded.Skipped > 0 ? $" ({loaded.Skipped} skipped as invalid)" : " (the file is empty)")}.");
        return recipe.MaxRecords > 0 ? loaded.Records.Take(recipe.MaxRecords).ToList() : loaded.Records;
    }

    /// <summary>Demonstrations of a file, tokenised (chat messages through the model's template).</summary>
    List<SftExample> Demonstrations(string path)
    {
        var demos = Take(DatasetLoader.LoadDemonstrations(path, recipe.Fields, recipe.SkipInvalid), path);
        ChatTemplate? template = demos.Any(d => d.Messages is not null)
            ? (Directory.Exists(model.Path) ? ChatTemplate.ForModel(model.Path, null) : ChatTemplate.FromName("plain"))
            : null;
        return demos.Select(d => SftExample.Create(model.Tokenizer, d, recipe.Sft.MaxLength, model.AddsBos, template)).ToList();
    }

    /// <summary>SFT's demonstrations (<c>sft_data</c>), train and held-out.</summary>
    public (List<SftExample> Train, List<SftExample> Eval) Sft() => RunStages.HoldOut(Demonstrations(Require(recipe.SftData, "sft_data")));

    /// <summary>
    /// The reward model's rankings (<c>rm_data</c>), train and held-out, and the sequences it is centred on: InstructGPT
    /// centres the RM on SFT demonstrations; without SFT data, the preferred responses stand in for them.
    /// </summary>
    public (List<RankedGroup> Train, List<RankedGroup> Eval, List<int[]> Centering) RewardModel()
    {
        string path = Require(recipe.RmData, "rm_data");
        var rankings = Take(DatasetLoader.LoadRankings(path, recipe.Fields, recipe.SkipInvalid), path);
        var (train, eval) = RunStages.HoldOut(stages.Tokenize(rankings, recipe.Rm.MaxLength));
        var centering = recipe.SftData is not null
            ? Demonstrations(Require(recipe.SftData, "sft_data")).Select(d => stages.EndWithEos(d.InputIds, recipe.Rm.MaxLength)).ToList()
            : train.Select(g => g.Sequences[0]).ToList();
        return (train, eval, centering);
    }

    /// <summary>Prompts for online stages from <c>ppo_prompts</c>; long ones keep their end (the latest turns).</summary>
    public List<int[]> OnlinePrompts()
    {
        string path = Require(recipe.PpoPrompts, "ppo_prompts");
        return Take(DatasetLoader.LoadPrompts(path, recipe.Fields, recipe.SkipInvalid), path)
            .Select(p => model.EncodePrompt(p.Prompt) is var ids && ids.Length > recipe.MaxPromptTokens ? ids[^recipe.MaxPromptTokens..] : ids)
            .ToList();
    }

    /// <summary>PPO-ptx's text (<c>ptx_data</c>, else <c>sft_data</c>); none when ptx is off.</summary>
    public List<SftExample> PtxExamples()
    {
        var ptxPath = recipe.PtxData ?? recipe.SftData;
        return ptxPath is null || recipe.Ppo.PtxCoef == 0 ? [] : Demonstrations(Require(ptxPath, "ptx_data"));
    }

    string PreferenceFile => Require(recipe.DpoData ?? recipe.RmData, "dpo_data");

    /// <summary>Preference pairs (<c>dpo_data</c>, else <c>rm_data</c>), train and held-out.</summary>
    public (List<PreferenceExample> Train, List<PreferenceExample> Eval) Pairs(DpoConfig config)
    {
        string path = PreferenceFile;
        return RunStages.HoldOut(Take(DatasetLoader.LoadPreferences(path, recipe.Fields, recipe.SkipInvalid), path)
            .Select(p => PreferenceExample.Create(model.Tokenizer, p, config.MaxLength, config.MaxPromptLength, model.AddsBos)).ToList());
    }

    /// <summary>KTO's labelled completions (<c>dpo_data</c>, else <c>rm_data</c>; pairs are unpaired), train and held-out.</summary>
    public (List<LabeledExample> Train, List<LabeledExample> Eval) Labeled(DpoConfig config)
    {
        string path = PreferenceFile;
        var labeled = Take(DatasetLoader.LoadLabeled(path, recipe.Fields, recipe.SkipInvalid), path)
            .Select(l => LabeledExample.Create(model.Tokenizer, l, config.MaxLength, config.MaxPromptLength, model.AddsBos)).ToList();
        // Held out per label, so both splits keep both labels, in TRL's order (desirable, then undesirable); the trainer
        // shuffles them with the seed and keeps KTO's mismatched KL pairs off a prompt's own answers (PreferenceTrainer.KtoOrder).
        var (trainDesirable, evalDesirable) = RunStages.HoldOut(labeled.Where(l => l.Label).ToList());
        var (trainUndesirable, evalUndesirable) = RunStages.HoldOut(labeled.Where(l => !l.Label).ToList());
        return ([.. trainDesirable, .. trainUndesirable], [.. evalDesirable, .. evalUndesirable]);
    }

    /// <summary>ILQL's scored completions (<c>ilql_data</c>, else <c>rm_data</c>), train and held-out.</summary>
    public (List<ScoredExample> Train, List<ScoredExample> Eval) Scored(Algorithms.Ilql.IlqlConfig config)
    {
        string path = Require(recipe.IlqlData ?? recipe.RmData, "ilql_data");
        return RunStages.HoldOut(Take(DatasetLoader.LoadScored(path, recipe.Fields, recipe.SkipInvalid), path)
            .Select(s => ScoredExample.Create(model.Tokenizer, s, config.MaxLength, config.MaxPromptLength, model.AddsBos)).ToList());
    }

    /// <summary>The alignment methods' data from the recipe's files, each read when a method asks for it.</summary>
    public MethodData ForMethods() => new()
    {
        Prompts = OnlinePrompts, PtxExamples = PtxExamples, Pairs = Pairs, Labeled = Labeled, Scored = Scored, Rewards = recipe.Rewards,
    };
}
