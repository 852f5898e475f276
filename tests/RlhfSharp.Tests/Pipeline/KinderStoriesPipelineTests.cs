using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ilql;
using RlhfSharp.Algorithms.OnlineDpo;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.RejectionSampling;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Pipeline;
using RlhfSharp.Training;

namespace RlhfSharp.Tests.Pipeline;

/// <summary>
/// The built-in pipeline end to end on a short budget (the full default run is the benchmark's job:
/// <c>rlhf pipeline</c>, numbers in docs/). Every stage runs for real on stories260K.
/// </summary>
public sealed class KinderStoriesPipelineTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-pipe-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    public static PipelineConfig Short => new()
    {
        Prompts = new PromptsConfig { Train = 48, Eval = 16 },
        Feedback = new FeedbackConfig { DemonstrationPrompts = 16, RankingPrompts = 32, K = 4, MaxNewTokens = 24 },
        Sft = new SftConfig { Epochs = 1, BatchSize = 8, MaxLength = 128, Optimizer = new OptimizerConfig { LearningRate = 2e-4 } },
        Rm = new RewardConfig { Epochs = 1, PromptsPerBatch = 8, MaxLength = 128, Optimizer = new OptimizerConfig { LearningRate = 3e-4 } },
        Ppo = new PpoConfig { Steps = 3, RolloutBatchSize = 8, MiniBatchSize = 4, PpoEpochs = 1, MaxNewTokens = 24, SaveEvery = 1,
            ActorOptimizer = new OptimizerConfig { LearningRate = 1e-4 }, CriticOptimizer = new OptimizerConfig { LearningRate = 1e-4 } },
        Eval = new EvalConfig { MaxNewTokens = 24, BestOfN = 2, ShownSamples = 4 },
    };

    [Fact]
    public void Short_run_writes_checkpoints_metrics_plots_report_and_summary_then_a_rerun_skips_every_stage()
    {
        string run = Path.Combine(tmp, "run");
        var summary = new KinderStoriesPipeline(Short, run).Run();

        foreach (var stage in new[] { "sft", "rm", "ppo" })
        {
            Assert.True(File.Exists(Path.Combine(run, stage, "checkpoint", "config.json")), stage);
            Assert.True(File.Exists(Path.Combine(run, stage, "checkpoint", "tokenizer.json")), stage);
            Assert.NotEmpty(File.ReadAllLines(Path.Combine(run, stage, "metrics.jsonl")));
            Assert.True(File.Exists(Path.Combine(run, stage, "done.json")), stage);
        }
        Assert.True(HuggingFaceCheckpoint.IsScoreModel(Path.Combine(run, "rm", "checkpoint")));
        foreach (var png in new[] { "gold_vs_kl.png", "ppo/reward.png", "ppo/kl.png", "sft/loss.png", "rm/accuracy.png" })
            Assert.True(new FileInfo(Path.Combine(run, png)).Length > 1000, png);
        Assert.Contains("<h1>", File.ReadAllText(Path.Combine(run, "report.html")));

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "summary.json")))!;
        foreach (var policy in new[] { "base", "sft", "best_of_2", "ppo" })
        {
            var p = json["policies"]![policy]!;
            double mean = p["gold_mean"]!.GetValue<double>();
            var ci = p["gold_ci95"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
            Assert.True(ci[0] <= mean && mean <= ci[1], policy);
            Assert.True(double.IsFinite(p["proxy_mean"]!.GetValue<double>()) && double.IsFinite(p["kl_to_sft"]!.GetValue<double>()), policy);
        }
        Assert.Equal(0.0, summary.Policies["sft"].KlToSft, 6);
        Assert.Equal(Math.Log(2) - 0.5, summary.Policies["best_of_2"].KlToSft, 9);
        Assert.InRange(summary.AnnotatorGoldAgreement, 0.5, 1.0);
        foreach (var stage in new[] { "feedback", "sft", "rm", "ppo", "eval" }) Assert.True(summary.StageSeconds.ContainsKey(stage), stage);
        // The RM against gold on the held-out rankings, and best-of-n picked by the process reward model from the same candidates.
        Assert.InRange(summary.RmGoldAccuracy, 0.0, 1.0);
        Assert.InRange(summary.HeldOutAnnotatorGoldAgreement, 0.0, 1.0);
        Assert.True(File.Exists(Path.Combine(run, "prm", "checkpoint", "prm.json")));
        foreach (var aggregation in new[] { "min", "product", "last" })
        {
            Assert.Equal(Math.Log(2) - 0.5, summary.Policies[$"best_of_2_prm_{aggregation}"].KlToSft, 9);
            // Paired by prompt against the outcome RM's pick: the mean difference is the difference of the two rows' means.
            var d = summary.PrmVsRmBestOfN[$"best_of_2_prm_{aggregation}"];
            Assert.Equal(summary.Policies[$"best_of_2_prm_{aggregation}"].GoldMean - summary.Policies["best_of_2"].GoldMean, d.Mean, 9);
            Assert.Equal(Short.Prompts.Eval, d.Prompts);
            Assert.Equal(d.Prompts, d.Wins + d.Losses + d.Ties);
            Assert.InRange(d.Mean, d.Ci95[0], d.Ci95[1]);
        }
        Assert.Contains("paired by prompt", File.ReadAllText(Path.Combine(run, "report.html")));
        Assert.Contains("against gold", File.ReadAllText(Path.Combine(run, "report.html")));

        var log = new List<string>();
        var sftBefore = File.GetLastWriteTimeUtc(Path.Combine(run, "sft", "checkpoint", "model.safetensors"));
        new KinderStoriesPipeline(Short, run) { Log = log.Add }.Run();
        Assert.Contains("feedback: already done, skipped", log);
        Assert.Contains("ppo: already done, skipped", log);
        Assert.Equal(sftBefore, File.GetLastWriteTimeUtc(Path.Combine(run, "sft", "checkpoint", "model.safetensors")));
    }

    [Fact]
    public void Cancelling_during_ppo_saves_state_and_a_resumed_run_finishes()
    {
        string run = Path.Combine(tmp, "cancel");
        using var cancel = new CancellationTokenSource();
        var progress = new Progress(p => { if (p.Stage == "ppo" && p.Step == 2) cancel.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => new KinderStoriesPipeline(Short, run) { Progress = progress }.Run(cancel.Token));
        Assert.True(File.Exists(Path.Combine(run, "sft", "done.json")));
        Assert.False(File.Exists(Path.Combine(run, "ppo", "done.json")));
        Assert.Equal(2, new StageState(Path.Combine(run, "ppo")).SavedStep);

        var log = new List<string>();
        var summary = new KinderStoriesPipeline(Short, run) { Log = log.Add }.Run();
        Assert.Contains("ppo: resuming at step 2", log);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "ppo", "metrics.jsonl")).Length);
        Assert.True(summary.Policies.ContainsKey("ppo"));
    }

    [Fact]
    public void Ilql_trains_on_the_run_rankings_saves_its_heads_and_is_graded_beside_sft()
    {
        string run = Path.Combine(tmp, "ilql");
        var config = Short with
        {
            Algos = [AlignmentMethod.Ilql],
            Ilql = new IlqlConfig { Epochs = 1, BatchSize = 8, MaxLength = 128, MaxPromptLength = 32, StepsForTargetQSync = 1,
                Optimizer = new OptimizerConfig { LearningRate = 1e-4, Schedule = ScheduleKind.Constant, WarmupRatio = 0 } },
        };
        var summary = new KinderStoriesPipeline(config, run).Run();

        string checkpoint = Path.Combine(run, "ilql", "checkpoint");
        Assert.True(File.Exists(Path.Combine(checkpoint, IlqlHeadsFile.WeightsFile)));
        Assert.True(File.Exists(Path.Combine(checkpoint, IlqlHeadsFile.ConfigFile)));
        // Every response of the 29 training rankings (a tenth of 32 held out), scored by rank: 116 examples in batches of 8.
        var rows = File.ReadAllLines(Path.Combine(run, "ilql", "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(15, rows.Count);
        Assert.All(rows, r => Assert.True(double.IsFinite(r["loss_q"]!.GetValue<double>()) && double.IsFinite(r["loss_awac"]!.GetValue<double>())));
        Assert.True(double.IsFinite(rows[^1]["eval_loss"]!.GetValue<double>()));
        var ilql = summary.Policies["ilql"];
        Assert.Equal(config.Prompts.Eval, ilql.Samples);
        Assert.InRange(ilql.KlToSft, ilql.KlCi95[0], ilql.KlCi95[1]);
        Assert.True(ilql.TrainSeconds > 0);
    }

    [Fact]
    public void Leaderboard_trains_every_method_from_the_same_sft_and_rm_and_grades_each_side_by_side()
    {
        string run = Path.Combine(tmp, "leaderboard");
        var tinyOptimizer = new OptimizerConfig { LearningRate = 1e-4, Schedule = ScheduleKind.Constant, WarmupRatio = 0 };
        var config = Short with
        {
            Algos = Enum.GetValues<AlignmentMethod>(),
            Dpo = new DpoConfig { Epochs = 1, BatchSize = 8, MaxLength = 128, MaxPromptLength = 32, Optimizer = tinyOptimizer },
            Grpo = new GroupRlConfig { Steps = 2, PromptsPerStep = 2, GroupSize = 2, MaxNewTokens = 16, MiniBatchSize = 4, Optimizer = tinyOptimizer },
            Rs = new RejectionSamplingConfig { Iterations = 1, PromptsPerIteration = 4, SamplesPerPrompt = 2, MaxNewTokens = 16,
                Sft = new SftConfig { Epochs = 1, BatchSize = 4, MaxLength = 128, Optimizer = tinyOptimizer } },
            OnlineDpo = new OnlineDpoConfig { Iterations = 1, PromptsPerIteration = 8, MaxNewTokens = 16,
                Dpo = new DpoConfig { Epochs = 1, BatchSize = 4, MaxLength = 128, MaxPromptLength = 32, Optimizer = tinyOptimizer } },
            OnlineDpoJudge = OnlineDpoJudge.Annotators,
            Ilql = new IlqlConfig { Epochs = 1, BatchSize = 8, MaxLength = 128, MaxPromptLength = 32, Optimizer = tinyOptimizer },
        };
        var log = new List<string>();
        var summary = new KinderStoriesPipeline(config, run) { Log = log.Add }.Run();

        Assert.Single(log, l => l == "sft: starting");
        Assert.Single(log, l => l == "rm: starting");
        var sftWeights = File.ReadAllBytes(Path.Combine(run, "sft", "checkpoint", "model.safetensors"));
        var stages = new[] { "ppo", "dpo", "ipo", "kto", "orpo", "simpo", "grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "remax", "rs", "online_dpo", "ilql", "nlpo", "a2c" };
        Assert.Equal(stages, Enum.GetValues<AlignmentMethod>().Select(KinderStoriesPipeline.StageName));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "summary.json")))!["policies"]!;
        var report = File.ReadAllText(Path.Combine(run, "report.html"));
        foreach (var stage in stages)
        {
            Assert.True(File.Exists(Path.Combine(run, stage, "done.json")), stage);
            // Every method trained: its weights moved away from the SFT model it started from.
            Assert.NotEqual(sftWeights, File.ReadAllBytes(Path.Combine(run, stage, "checkpoint", "model.safetensors")));
            var p = json[stage]!;
            double gold = p["gold_mean"]!.GetValue<double>();
            var ci = p["gold_ci95"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
            Assert.True(ci[0] <= gold && gold <= ci[1], stage);
            var klCi = p["kl_ci95"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
            Assert.InRange(p["kl_to_sft"]!.GetValue<double>(), klCi[0], klCi[1]);
            Assert.True(p["train_seconds"]!.GetValue<double>() > 0, stage);
            Assert.True(p["train_tokens_per_s"]!.GetValue<double>() > 0, stage);
            Assert.Equal(config.Prompts.Eval, p["samples"]!.GetValue<int>());
            Assert.Contains($"<td>{stage}</td>", report);
        }
        Assert.True(File.Exists(Path.Combine(run, "ilql", "checkpoint", IlqlHeadsFile.WeightsFile)));
        Assert.Equal(0, summary.Policies["sft"].TrainSeconds);
        // The annotators labelled online DPO's pairs: every pair got a winner (no reward-model ties to drop).
        var round = File.ReadAllLines(Path.Combine(run, "online_dpo", "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).Single();
        Assert.Equal(config.OnlineDpo.PromptsPerIteration, round["pairs"]!.GetValue<double>());
    }

    sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}

