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
    public void The_pipeline_recipe_given_to_a_stage_command_says_which_command_reads_it_and_which_keys_the_stage_commands_take()
    {
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<StageRecipe>(RepoFile("recipes/kinder-stories.json")));
        Assert.Contains("'prompts' is a key of the recipe of rlhf pipeline", e.Message);
        Assert.Contains("sft_data", e.Message);
        NoDotNetNames(e.Message);
        var back = Assert.Throws<RlhfException>(() => Recipe.Load<PipelineConfig>(RepoFile("recipes/hh-rlhf.json")));
        Assert.Contains("'rm_data' is a key of the recipe of the stage commands", back.Message);
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
