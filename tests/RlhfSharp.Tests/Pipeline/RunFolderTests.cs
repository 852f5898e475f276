using RlhfSharp.Checkpoints;
using RlhfSharp.Pipeline;
using RlhfSharp.Tests.Resilience;

namespace RlhfSharp.Tests.Pipeline;

/// <summary>
/// Issue #16 §2: a pipeline run folder never lies (a resume with another recipe is refused, naming the key) and is never
/// written where it must not be (a model folder, a user's folder, before validation, after a failed start).
/// </summary>
public sealed class RunFolderTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-runfolder-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    string StartedRun(PipelineConfig config)
    {
        string dir = Path.Combine(tmp, "run");
        RunFolder.WriteConfig(dir, config);
        return dir;
    }

    [Fact]
    public void Resuming_with_a_changed_key_is_refused_naming_it_and_the_same_recipe_resumes()
    {
        var config = KinderStoriesPipelineTests.Short;
        string dir = StartedRun(config);
        string saved = File.ReadAllText(Path.Combine(dir, "config.json"));
        var changed = config with { Ppo = config.Ppo with { ActorOptimizer = config.Ppo.ActorOptimizer with { LearningRate = 0.1 } } };
        var e = Assert.Throws<RlhfException>(() => RunFolder.Check(dir, changed, resume: true));
        Assert.Contains("'ppo.actor_optimizer.learning_rate'", e.Message);
        // The library entry point (KinderStoriesPipeline.Run) checks too, before it loads anything.
        e = Assert.Throws<RlhfException>(() => new KinderStoriesPipeline(changed, dir).Run());
        Assert.Contains("'ppo.actor_optimizer.learning_rate'", e.Message);
        Assert.Equal(saved, File.ReadAllText(Path.Combine(dir, "config.json")));

        RunFolder.Check(dir, config, resume: true);
        RunFolder.Check(dir, config); // a library rerun
        // Adding a method trains it from the same SFT model and RM: allowed.
        RunFolder.Check(dir, config with { Algos = [AlignmentMethod.Ppo, AlignmentMethod.Dpo] }, resume: true);
        // Without --resume an existing run is refused, as before.
        Assert.Contains("already holds a run", Assert.Throws<RlhfException>(() => RunFolder.Check(dir, config, resume: false)).Message);
    }

    [Fact]
    public void A_model_folder_or_a_users_folder_is_never_taken_for_a_run()
    {
        string model = Path.Combine(tmp, "model");
        Directory.CreateDirectory(model);
        string hfConfig = """{"model_type": "llama", "hidden_size": 64}""";
        File.WriteAllText(Path.Combine(model, "config.json"), hfConfig);
        foreach (bool? resume in new bool?[] { true, false, null })
        {
            var e = Assert.Throws<RlhfException>(() => RunFolder.Check(model, new PipelineConfig(), resume));
            Assert.Contains("not written by rlhf pipeline", e.Message);
        }
        Assert.Throws<RlhfException>(() => new KinderStoriesPipeline(new PipelineConfig(), model).Run());
        Assert.Equal(hfConfig, File.ReadAllText(Path.Combine(model, "config.json")));

        string mine = Path.Combine(tmp, "mine");
        Directory.CreateDirectory(mine);
        File.WriteAllText(Path.Combine(mine, "notes.txt"), "x");
        Assert.Contains("not a run folder", Assert.Throws<RlhfException>(() => RunFolder.Check(mine, new PipelineConfig(), resume: true)).Message);
    }

    [Fact]
    public void Resume_of_a_folder_that_does_not_exist_says_so_and_a_file_is_not_a_folder()
    {
        string missing = Path.Combine(tmp, "nothing-here");
        Assert.Contains("does not exist", Assert.Throws<RlhfException>(() => RunFolder.Check(missing, new PipelineConfig(), resume: true)).Message);
        Assert.False(Directory.Exists(missing));
        RunFolder.Check(missing, new PipelineConfig(), resume: false); // a fresh start there is fine
        string file = Path.Combine(tmp, "file");
        File.WriteAllText(file, "x");
        Assert.Contains("is a file", Assert.Throws<RlhfException>(() => RunFolder.Check(file, new PipelineConfig())).Message);
    }

    [Fact]
    public void A_start_that_fails_on_its_model_writes_nothing_and_a_config_alone_is_removed()
    {
        string dir = Path.Combine(tmp, "failed");
        var config = new PipelineConfig { Model = Path.Combine(tmp, "no-such-model") };
        Assert.Throws<RlhfException>(() => new KinderStoriesPipeline(config, dir).Run());
        Assert.False(Directory.Exists(dir));

        // What a failure after the config was written leaves: the config alone goes; anything more stays.
        RunFolder.WriteConfig(dir, config);
        RunFolder.RemoveIfUnstarted(dir);
        Assert.False(Directory.Exists(dir));
        RunFolder.WriteConfig(dir, config);
        Directory.CreateDirectory(Path.Combine(dir, "feedback"));
        RunFolder.RemoveIfUnstarted(dir);
        Assert.True(File.Exists(Path.Combine(dir, "config.json")));
    }

    [Fact]
    public void The_cli_resume_into_a_model_folder_leaves_its_config_json_byte_for_byte()
    {
        string model = Path.Combine(tmp, "hf");
        Assert.Equal(0, FaultRun.Run(["convert", "--model", "stories260k", "--out", model]).ExitCode);
        var before = Directory.GetFiles(model).ToDictionary(f => f, FaultRun.Sha256);
        var r = FaultRun.Run(["pipeline", "--out", model, "--resume"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("not written by rlhf pipeline", r.Stderr);
        Assert.Equal(before, Directory.GetFiles(model).ToDictionary(f => f, FaultRun.Sha256));
        // The model still loads.
        using var loaded = PretrainedModel.Load(model);
    }
}
