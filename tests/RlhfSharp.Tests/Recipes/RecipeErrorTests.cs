using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;

namespace RlhfSharp.Tests.Recipes;

/// <summary>Recipe mistakes said in the recipe's words, and cross-field checks when the recipe is read (issue 15).</summary>
public sealed class RecipeErrorTests
{
    static string RepoFile(string relative)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx"))) dir = dir.Parent;
        return Path.Combine(dir!.FullName, relative);
    }

    static void NoDotNetNames(string message)
    {
        foreach (var leak in new[] { "System.", "RlhfSharp.", "PpoConfig", "KlEstimatorKind", ".NET", "Int32", "Double", "Boolean" })
            Assert.DoesNotContain(leak, message);
    }

    [Theory]
    [InlineData("ppo.epochs=1", "unknown key 'ppo.epochs' (did you mean 'ppo.ppo_epochs'?)")]
    [InlineData("ppo.setps=3", "did you mean 'ppo.steps'?")]
    [InlineData("ppo.kl_estimator=k4", "ppo.kl_estimator must be one of k1, k2, k3, got \"k4\"")]
    [InlineData("ppo.critic=valuehead", "did you mean 'value_head'?")]
    [InlineData("ppo.steps=many", "ppo.steps must be an integer, got \"many\"")]
    [InlineData("ppo.steps=1.5", "ppo.steps must be an integer, got 1.5")]
    [InlineData("sft.optimizer.learning_rate=fast", "sft.optimizer.learning_rate must be a number")]
    [InlineData("ppo.whiten_advantages=1", "ppo.whiten_advantages must be true or false, got 1")]
    [InlineData("ppo.kl_estimator=1", "must be one of k1, k2, k3")]
    [InlineData("sft.lora.target_modules=q_proj", "sft.lora.target_modules must be a list of strings")]
    public void Mistyped_keys_and_values_are_said_in_the_recipes_words(string set, string expected)
    {
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<StageRecipe>(null, [set]));
        Assert.Contains(expected, e.Message);
        NoDotNetNames(e.Message);
    }

    [Fact]
    public void An_unknown_key_lists_the_keys_its_section_takes()
    {
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(null, ["ppo.epochs=1"]));
        Assert.Contains("'ppo' takes:", e.Message);
        Assert.Contains("rollout_batch_size", e.Message);
        Assert.Contains("ppo_epochs", e.Message);
    }

    [Fact]
    public void The_pipeline_recipe_serves_the_stage_commands_with_its_sections_and_says_what_it_leaves_out()
    {
        string path = RepoFile("recipes/kinder-stories.json");
        var notes = new List<string>();
        var config = Recipe.Load<StageRecipe>(path, ["sft_data=demos.jsonl"], notes.Add);
        // The file's own values (read here with a plain JSON reader; recipes may carry comments), not the stage commands' defaults.
        var file = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path), documentOptions: new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip })!;
        Assert.Equal((string)file["name"]!, config.Name);
        Assert.Equal((int)file["sft"]!["epochs"]!, config.Sft.Epochs);
        Assert.Equal((double)file["sft"]!["optimizer"]!["learning_rate"]!, config.Sft.Optimizer.LearningRate);
        Assert.Equal((int)file["ppo"]!["rollout_batch_size"]!, config.Ppo.RolloutBatchSize);
        Assert.NotEqual(new StageRecipe().Sft.Optimizer.LearningRate, config.Sft.Optimizer.LearningRate);
        Assert.Equal("demos.jsonl", config.SftData);
        var note = Assert.Single(notes);
        Assert.Contains("is the recipe of rlhf pipeline", note);
        Assert.Contains("leave prompts, feedback, gold", note);
        Assert.Contains("--set sft_data=FILE", note);
        NoDotNetNames(note);
        // A stage recipe given to the pipeline is still refused: the pipeline would ignore its data files.
        var back = Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(RepoFile("recipes/hh-rlhf.json")));
        Assert.Contains("'rm_data' is a key of the recipe of the stage commands", back.Message);
        // A file mixing both kinds is an error naming the key, not a silent drop.
        string mixed = Path.Combine(Path.GetTempPath(), $"mixed-{Guid.NewGuid():N}.json");
        File.WriteAllText(mixed, "{\"prompts\": {\"train\": 10}, \"sft_data\": \"x.jsonl\"}");
        try { Assert.Contains("'prompts' is a key of the recipe of rlhf pipeline", Assert.Throws<RlhfException>(() => Recipe.Load<StageRecipe>(mixed)).Message); }
        finally { File.Delete(mixed); }
    }

    [Theory]
    [InlineData("sft.lora={\"r\":0}", "sft.lora.r must be at least 1")]
    [InlineData("rs.sft.lora={\"r\":0}", "rs.sft.lora.r must be at least 1")]
    [InlineData("ppo.mini_batch_size=600", "ppo.mini_batch_size (600) must not exceed ppo.rollout_batch_size (512)")]
    [InlineData("grpo.group_size=1", "group_size must be at least 2")]
    public void Cross_field_checks_run_when_the_stage_recipe_is_read(string set, string expected)
    {
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<StageRecipe>(null, [set]));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Cross_field_checks_run_when_the_pipeline_recipe_is_read()
    {
        // The pipeline's PPO rolls out 32 per batch: a minibatch of 64 was silently the whole batch.
        Assert.Contains("ppo.mini_batch_size (64)", Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(null, ["ppo.mini_batch_size=64"])).Message);
        Assert.Contains("ppo: set kl_target_per_token", Assert.Throws<RlhfException>(() =>
            Recipe.Load<PipelineConfig>(null, ["ppo.kl_target_per_token=0.1", "ppo.kl_target_per_sequence=6"])).Message);
        Assert.Contains("kindness max", Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(null, ["gold.kindness_max=-1"])).Message);
        // At the edge: a minibatch of the whole rollout batch is fine.
        Assert.Equal(32, Recipe.Load<PipelineConfig>(null, ["ppo.mini_batch_size=32"]).Ppo.MiniBatchSize);
    }

    [Theory]
    [InlineData("setps", "steps")]
    [InlineData("epochs", "ppo_epochs")]
    [InlineData("learnign_rate", "learning_rate")]
    [InlineData("zzzz", null)]
    public void Nearest_key_finds_transpositions_and_suffixes_and_nothing_for_noise(string typed, string? expected) =>
        Assert.Equal(expected, RecipeSchema.Nearest(typed, ["steps", "ppo_epochs", "learning_rate", "seed"]));
}
