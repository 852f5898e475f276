using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Evaluation;
using RlhfSharp.Generation;
using RlhfSharp.Pipeline;
using RlhfSharp.Rewards;
using RlhfSharp.Tests.Cli;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Rewards;

/// <summary>
/// Issue 14's three uses of a process reward model beyond best-of-n: a reward term of PPO and the GRPO family
/// (<c>"rewards": [{"source": "prm"}]</c>), the judge of <c>rlhf eval --reward prm:PATH[:agg]</c>, and
/// <c>rlhf eval --prm PATH</c> on step-labelled data.
/// </summary>
public sealed class ProcessRewardUsesTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-prm-uses-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    /// <summary>A PRM folder as <c>rlhf prm</c> writes one: stories260K with a seeded two-label head, steps cut into sentences.</summary>
    string Prm(string dir)
    {
        string lm = Path.Combine(tmp, "lm");
        if (!Directory.Exists(lm)) HuggingFaceCheckpoint.Save(BaseModel.Value.Model, lm, writeExtras: BaseModel.Value.WriteTokenizerFiles);
        manual_seed(11);
        using var model = HuggingFaceCheckpoint.LoadScoreModel(lm, allowNewHead: true, numLabels: 2);
        HuggingFaceCheckpoint.Save(model, dir, writeExtras: BaseModel.Value.WriteTokenizerFiles);
        ProcessRewardModel.WriteSettings(dir, "\n", StepSplit.Sentences, 256);
        return dir;
    }

    static SampleBatch Rollouts()
    {
        var m = BaseModel.Value;
        var sampler = new Sampler(m.Model, m.Tokenizer);
        var (ids, mask) = sampler.LeftPad([m.EncodePrompt("Lily was sad"), m.EncodePrompt("The happy dog"), m.EncodePrompt("Tom had a ball")]);
        return sampler.Sample(ids, mask, new SamplingOptions { MaxNewTokens = 40, Temperature = 1.0, Seed = 5 });
    }

    [Fact]
    public void A_prm_reward_term_is_the_aggregated_step_score_of_each_rollout_and_defaults_to_the_runs_prm_folder()
    {
        string run = Path.Combine(tmp, "run");
        string prmDir = Prm(Path.Combine(run, "prm", "checkpoint"));
        string runRm = Path.Combine(run, "rm", "checkpoint"); // never created: a prm term needs no reward model
        var m = BaseModel.Value;
        using var batch = Rollouts();
        var (prompts, texts) = RunStages.RolloutTexts(batch, m.Tokenizer);
        foreach (var aggregation in new[] { StepAggregation.Min, StepAggregation.Product, StepAggregation.Last })
        {
            using var prm = ProcessRewardModel.Load(prmDir, aggregation);
            var steps = prm.StepScores(prompts, texts);
            var expected = steps.Select(s => ProcessRewardModel.Aggregate(s, aggregation)).ToArray();
            Assert.Contains(steps, s => s.Length > 1); // several sentences: the aggregations really differ
            using var reward = new RolloutReward([new RewardSource { Source = RewardSourceKind.Prm, Aggregation = aggregation, Weight = 2.0 }],
                runRm, m.Model.Config.VocabSize, m.Tokenizer);
            var total = reward.Score(batch).data<float>().ToArray();
            for (int i = 0; i < total.Length; i++) Assert.Equal(2.0 * expected[i], total[i], 5);
            Assert.All(expected, e => Assert.InRange(e, 0.0, 1.0));
        }
        string missing = Path.Combine(tmp, "none");
        var e = Assert.Throws<RlhfException>(() => new RolloutReward([new RewardSource { Source = RewardSourceKind.Prm, Path = missing }], runRm, m.Model.Config.VocabSize, m.Tokenizer));
        Assert.Contains(missing, e.Message);
    }

    [Theory]
    [InlineData("ppo", new[] { "--set", "ppo.steps=2", "--set", "ppo.rollout_batch_size=4", "--set", "ppo.mini_batch_size=4", "--set", "ppo.max_new_tokens=16", "--set", "ppo.critic=value_head" })]
    [InlineData("grpo", new[] { "--set", "grpo.steps=2", "--set", "grpo.prompts_per_step=2", "--set", "grpo.group_size=2", "--set", "grpo.max_new_tokens=16", "--set", "grpo.mini_batch_size=4" })]
    public void Ppo_and_grpo_train_on_a_prm_reward_set_in_the_recipe(string stage, string[] settings)
    {
        string prm = Prm(Path.Combine(tmp, "prm"));
        string run = Path.Combine(tmp, stage);
        var r = RlhfProcess.Run(["ppo" == stage ? "ppo" : "grpo", "--recipe", RepoFile("recipes/hh-rlhf.json"), "--out", run,
            "--set", $$"""rewards=[{"source": "prm", "path": "{{prm}}", "aggregation": "last"}]""",
            "--set", "max_records=8", "--set", "max_prompt_tokens=64", .. settings]);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        Assert.False(Directory.Exists(Path.Combine(run, "rm")));
        var rows = File.ReadAllLines(Path.Combine(run, stage, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(2, rows.Count);
        // A PRM's aggregated score is a probability: the rollouts' mean reward lies in [0, 1] (an RM's is unbounded).
        foreach (var row in rows) Assert.InRange((double)row["reward_mean"]!, 0.0, 1.0);
    }

    [Fact]
    public void Rlhf_eval_judges_samples_with_a_prm_and_reports_step_accuracy_on_step_labels()
    {
        string prm = Prm(Path.Combine(tmp, "prm"));
        string data = Path.Combine(tmp, "steps.jsonl");
        var rows = new[]
        {
            ("Lily went to the park.", new[] { " She saw a big dog.", " The dog was kind.", " They played all day." }, new object[] { true, true, false }),
            ("Tom had a red ball.", new[] { " He threw it high.", " It fell in the pond." }, new object[] { 1, -1 }),
            ("The cat was sad.", new[] { " A bird sang to her.", " She smiled." }, new object[] { 0.75, 0.25 }),
        };
        File.WriteAllLines(data, rows.Select(x => new JsonObject
        {
            ["prompt"] = x.Item1, ["completions"] = new JsonArray([.. x.Item2.Select(s => (JsonNode)s)]),
            ["labels"] = new JsonArray([.. x.Item3.Select(l => JsonValue.Create(l))]),
        }.ToJsonString()));

        // --prm: step accuracy against the labels, as the library computes it from the PRM's own step scores.
        string stepsOut = Path.Combine(tmp, "prm-eval");
        var r = RlhfProcess.Run("eval", "--prm", prm, "--data", data, "--out", stepsOut);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        var records = DatasetLoader.LoadStepwise(data).Records;
        using (var model = ProcessRewardModel.Load(prm, StepAggregation.Min))
        {
            var expected = ProcessRewardAccuracy.Compute(model.StepScores(records), records.Select(x => x.Labels).ToList());
            var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(stepsOut, "metrics.json")))!;
            Assert.Equal(7.0, (double)metrics["steps"]!);
            Assert.Equal(expected.StepAccuracy, (double)metrics["step_accuracy"]!, 9);
            Assert.Equal(expected.MeanGoodScore, (double)metrics["mean_score_good_steps"]!, 9);
            Assert.Equal(expected.SolutionAccuracy, (double)metrics["solution_accuracy_min"]!, 9);
        }

        // --reward prm:PATH:last judges the policy's greedy samples: reward_mean is the PRM's last-step score of each.
        string prompts = Path.Combine(tmp, "prompts.jsonl");
        File.WriteAllLines(prompts, rows.Select(x => new JsonObject { ["prompt"] = x.Item1 }.ToJsonString()));
        string judged = Path.Combine(tmp, "judged");
        r = RlhfProcess.Run("eval", "--model", "stories260k", "--data", prompts, "--reward", $"prm:{prm}:last", "--out", judged,
            "--max-new-tokens", "24", "--temperature", "0");
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        var samples = File.ReadAllLines(Path.Combine(judged, "samples.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(3, samples.Count);
        using (var model = ProcessRewardModel.Load(prm, StepAggregation.Last))
        {
            var scores = model.Score(samples.Select(s => (string)s["prompt"]!).ToList(), samples.Select(s => (string)s["completion"]!).ToList());
            var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(judged, "metrics.json")))!;
            Assert.Equal(scores.Average(), (double)metrics["reward_mean"]!, 5);
        }
        var bad = RlhfProcess.Run("eval", "--model", "stories260k", "--data", prompts, "--reward", $"prm:{prm}:median", "--out", judged);
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("'median' is not a step aggregation; use min, product or last", bad.Stderr);
    }

    static string RepoFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, relative))) return Path.Combine(d.FullName, relative);
        throw new FileNotFoundException(relative);
    }
}
