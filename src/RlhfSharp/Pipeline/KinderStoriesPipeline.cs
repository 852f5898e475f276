using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Recipes;
using RlhfSharp.Reporting;
using RlhfSharp.Rewards;
using RlhfSharp.Tokenization;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Pipeline;

/// <summary>
/// The InstructGPT recipe end to end on the built-in task (DESIGN.md, "kinder stories"): base samples → simulated
/// people pick demonstrations and rank samples → SFT → reward model → PPO → every policy graded on held-out prompts
/// by the hidden gold rubric. Each stage writes its folder under the run and is skipped when a rerun finds it done.
/// </summary>
public sealed class KinderStoriesPipeline(PipelineConfig config, string runDir)
{
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>One line per stage event ("sft: skipped, already done").</summary>
    public Action<string>? Log { get; init; }

    readonly Dictionary<string, double> seconds = [];

    public PipelineSummary Run(CancellationToken cancel = default)
    {
        Directory.CreateDirectory(runDir);
        WriteAtomically(Path.Combine(runDir, "config.json"), Recipe.Serialize(config));
        using var base_ = PretrainedModel.Load(config.Model);
        var tokenizer = base_.Tokenizer;
        var (trainPrompts, evalPrompts) = StoryPrompts.Split(config.Prompts.Train, config.Prompts.Eval, config.Prompts.Seed);
        var gold = new GoldRubric(VaderLexicon.Default, new FluencyScorer(base_.Model, tokenizer), config.Gold);

        var feedback = Stage("feedback", () => Feedback(base_, gold, trainPrompts, cancel));
        var demonstrations = DatasetLoader.LoadDemonstrations(Path.Combine(runDir, "feedback", "demonstrations.jsonl")).Records;
        var rankings = DatasetLoader.LoadRankings(Path.Combine(runDir, "feedback", "rankings.jsonl")).Records;
        var sftExamples = demonstrations.Select(d => SftExample.FromPromptCompletion(tokenizer, d.Prompt, d.Completion, config.Sft.MaxLength, base_.AddsBos)).ToList();

        Stage("sft", () => TrainSft(base_, sftExamples, cancel));
        var rm = Stage("rm", () => TrainRewardModel(base_, sftExamples, rankings, cancel));
        Stage("ppo", () => TrainPpo(base_, trainPrompts, sftExamples, gold, cancel));
        var summary = Evaluate(base_, gold, evalPrompts, feedback, rm, cancel);
        return summary;
    }

    string StageDir(string stage) => Path.Combine(runDir, stage);

    /// <summary>Runs a stage unless its done.json exists; returns the stage's summary numbers either way.</summary>
    Dictionary<string, double> Stage(string name, Func<Dictionary<string, double>> body)
    {
        var state = new StageState(StageDir(name));
        if (File.Exists(Path.Combine(StageDir(name), "done.json")))
        {
            Log?.Invoke($"{name}: already done, skipped");
            var done = state.ReadDone();
            seconds[name] = done.GetValueOrDefault("seconds");
            return done;
        }
        Log?.Invoke(state.SavedStep is int s ? $"{name}: resuming at step {s}" : $"{name}: starting");
        var clock = Stopwatch.StartNew();
        var result = body();
        result["seconds"] = clock.Elapsed.TotalSeconds + (state.SavedStep is null ? 0 : 0);
        Directory.CreateDirectory(StageDir(name));
        state.MarkDone(result);
        seconds[name] = result["seconds"];
        Log?.Invoke($"{name}: done in {result["seconds"]:F0} s");
        return result;
    }

    /// <summary>Samples from the base model and has the simulated annotators pick demonstrations and rank samples.</summary>
    Dictionary<string, double> Feedback(PretrainedModel base_, GoldRubric gold, List<string> prompts, CancellationToken cancel)
    {
        var f = config.Feedback;
        var demoPrompts = prompts.Take(f.DemonstrationPrompts).ToList();
        var rankPrompts = prompts.Skip(f.DemonstrationPrompts).Concat(prompts).Take(f.RankingPrompts).ToList();
        var sampler = new Sampler(base_.Model, base_.Tokenizer);
        var options = new SamplingOptions { MaxNewTokens = f.MaxNewTokens, Temperature = f.Temperature, Seed = f.Seed };
        int total = demoPrompts.Count + rankPrompts.Count;
        var demoCandidates = SampleMany(base_, sampler, demoPrompts, f.DemonstrationCandidates, options, "feedback", 0, total, cancel);
        var rankCandidates = SampleMany(base_, sampler, rankPrompts, f.K, options with { Seed = f.Seed + 1 }, "feedback", demoPrompts.Count, total, cancel);

        // Calibrate the annotators' noise on pairs of these very samples, then label.
        var pairGold = rankPrompts.SelectMany((p, i) => gold.Score([p, p], [rankCandidates[i][0], rankCandidates[i][1]]) is var g ? new[] { (g[0], g[1]) } : []).ToList();
        double tau = AnnotatorPool.Calibrate(pairGold, f.TargetAgreement);
        var pool = new AnnotatorPool(gold, f.Annotators with { Temperature = tau });

        var demoLines = demoPrompts.Select((p, i) => new JsonObject { ["prompt"] = p, ["completion"] = demoCandidates[i][pool.PickBest(p, demoCandidates[i])] }.ToJsonString());
        int agree = 0, pairs = 0;
        var rankLines = new List<string>();
        for (int i = 0; i < rankPrompts.Count; i++)
        {
            var ranking = pool.Rank(rankPrompts[i], rankCandidates[i]);
            var g = gold.Score(Enumerable.Repeat(rankPrompts[i], f.K).ToList(), rankCandidates[i]);
            for (int a = 0; a < ranking.Length; a++)
                for (int b = a + 1; b < ranking.Length; b++)
                    if (g[ranking[a]] != g[ranking[b]]) { pairs++; if (g[ranking[a]] > g[ranking[b]]) agree++; }
            rankLines.Add(new JsonObject
            {
                ["prompt"] = rankPrompts[i],
                ["responses"] = new JsonArray(rankCandidates[i].Select(r => (JsonNode)r!).ToArray()),
                ["ranking"] = new JsonArray(ranking.Select(r => (JsonNode)r).ToArray()),
            }.ToJsonString());
        }
        Directory.CreateDirectory(StageDir("feedback"));
        WriteAtomically(Path.Combine(StageDir("feedback"), "demonstrations.jsonl"), string.Join('\n', demoLines) + "\n");
        WriteAtomically(Path.Combine(StageDir("feedback"), "rankings.jsonl"), string.Join('\n', rankLines) + "\n");
        return new Dictionary<string, double>
        {
            ["annotator_temperature"] = tau, ["annotator_gold_agreement"] = (double)agree / Math.Max(1, pairs),
            ["demonstrations"] = demoPrompts.Count, ["rankings"] = rankPrompts.Count,
        };
    }

    /// <summary><paramref name="n"/> samples per prompt, batched.</summary>
    List<List<string>> SampleMany(PretrainedModel m, Sampler sampler, List<string> prompts, int n, SamplingOptions options, string stage, int doneBefore, int total, CancellationToken cancel)
    {
        const int batchPrompts = 16;
        var result = new List<List<string>>();
        for (int start = 0; start < prompts.Count; start += batchPrompts)
        {
            cancel.ThrowIfCancellationRequested();
            var chunk = prompts.Skip(start).Take(batchPrompts).ToList();
            var ids = chunk.SelectMany(p => Enumerable.Repeat(m.EncodePrompt(p), n)).ToList();
            var completions = sampler.Generate(ids, options with { Seed = options.Seed + (ulong)start * 31 }, cancel: cancel);
            for (int i = 0; i < chunk.Count; i++) result.Add(completions.Skip(i * n).Take(n).Select(c => c.Text).ToList());
            Progress?.Report(new TrainingProgress(stage, doneBefore + start + chunk.Count, total, new Dictionary<string, double>()));
        }
        return result;
    }

    Dictionary<string, double> TrainSft(PretrainedModel base_, List<SftExample> examples, CancellationToken cancel)
    {
        using var policy = base_.Model.Clone();
        int evalCount = Math.Max(1, examples.Count / 10);
        using var metrics = new MetricsLog(Path.Combine(StageDir("sft"), "metrics.jsonl"));
        var trainer = new SftTrainer(policy, config.Sft, PadId(base_.Tokenizer)) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(examples.Skip(evalCount).ToList(), examples.Take(evalCount).ToList(), new StageState(StageDir("sft")), cancel);
        SaveWithTokenizer(policy, base_, StageDir("sft"));
        Charts.Lines(metrics.Rows, "step", [("loss", "train loss"), ("eval_loss", "eval loss")], "SFT loss (response tokens)", "nats/token", Path.Combine(StageDir("sft"), "loss.png"));
        return result;
    }

    Dictionary<string, double> TrainRewardModel(PretrainedModel base_, List<SftExample> demonstrations, IReadOnlyList<Ranking> rankings, CancellationToken cancel)
    {
        // InstructGPT initialises the RM from the SFT model, with a new scalar head (§3.5).
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(Path.Combine(StageDir("sft"), "checkpoint"), allowNewHead: true);
        var tokenizer = base_.Tokenizer;
        var groups = rankings.Select(r => new RankedGroup(r.Responses.Select(resp =>
            SftExample.FromPromptCompletion(tokenizer, r.Prompt, resp, config.Rm.MaxLength, base_.AddsBos).InputIds).ToList())).ToList();
        int evalCount = Math.Max(1, groups.Count / 10);
        using var metrics = new MetricsLog(Path.Combine(StageDir("rm"), "metrics.jsonl"));
        var trainer = new RewardTrainer(rm, config.Rm, PadId(tokenizer)) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(groups.Skip(evalCount).ToList(), groups.Take(evalCount).ToList(), new StageState(StageDir("rm")), cancel);
        if (config.Rm.NormalizeOnDemonstrations) trainer.NormalizeOn(demonstrations.Select(d => d.InputIds).ToList());
        result["reward_mean_offset"] = rm.RewardMean ?? 0;
        HuggingFaceCheckpoint.Save(rm, Path.Combine(StageDir("rm"), "checkpoint"), writeExtras: base_.WriteTokenizerFiles);
        Charts.Lines(metrics.Rows, "step", [("accuracy", "train pair accuracy"), ("eval_accuracy", "eval pair accuracy")], "Reward model accuracy", "fraction of pairs ordered as people did", Path.Combine(StageDir("rm"), "accuracy.png"));
        return result;
    }

    Dictionary<string, double> TrainPpo(PretrainedModel base_, List<string> prompts, List<SftExample> ptx, GoldRubric gold, CancellationToken cancel)
    {
        string sftDir = Path.Combine(StageDir("sft"), "checkpoint"), rmDir = Path.Combine(StageDir("rm"), "checkpoint");
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(sftDir);
        using var reference = HuggingFaceCheckpoint.LoadCausalLM(sftDir);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        using var critic = config.Ppo.Critic == CriticKind.SeparateFromRewardModel ? HuggingFaceCheckpoint.LoadScoreModel(rmDir) : null;
        foreach (var p in rm.parameters()) p.requires_grad = false;
        var tokenizer = base_.Tokenizer;
        var sampler = new Sampler(policy, tokenizer);
        using var metrics = new MetricsLog(Path.Combine(StageDir("ppo"), "metrics.jsonl"));
        var trainer = new PpoTrainer(policy, reference, critic, b => rm.Rewards(b.Sequences, b.AttentionMask), sampler, PadId(tokenizer), config.Ppo)
        {
            Progress = Progress, Metrics = metrics,
            // The hidden gold of every rollout, logged beside the proxy so over-optimisation shows while it happens.
            RolloutMetrics = b =>
            {
                var (promptTexts, texts) = Texts(b, tokenizer);
                return new Dictionary<string, double> { ["gold_mean"] = gold.Score(promptTexts, texts).Average() };
            },
        };
        var promptIds = prompts.Select(base_.EncodePrompt).ToList();
        var result = trainer.Train(promptIds, ptx, new StageState(StageDir("ppo")), cancel);
        var final = trainer.Ema ?? policy;
        SaveWithTokenizer(final, base_, StageDir("ppo"));
        string dir = StageDir("ppo");
        Charts.Lines(metrics.Rows, "step", [("reward_mean", "proxy reward (RM)"), ("gold_mean", "gold reward")], "PPO: proxy and gold reward of rollouts", "reward", Path.Combine(dir, "reward.png"));
        Charts.Lines(metrics.Rows, "step", [("kl", "KL to SFT (per sample)")], "PPO: KL to the SFT model", "nats", Path.Combine(dir, "kl.png"));
        return result.Where(kv => kv.Key is "reward_mean" or "gold_mean" or "kl" or "kl_coef").ToDictionary();
    }

    /// <summary>Prompt and new text of each rollout row (prompt tokens are the masked-in part of the left-padded prompt).</summary>
    static (List<string> Prompts, List<string> Texts) Texts(SampleBatch b, ITokenizer tokenizer)
    {
        var seq = b.Sequences.cpu().data<long>().ToArray();
        var mask = b.AttentionMask.cpu().data<long>().ToArray();
        int width = (int)b.Sequences.shape[1];
        var prompts = new List<string>();
        for (int i = 0; i < b.NewTokens.Length; i++)
        {
            var ids = Enumerable.Range(0, b.PromptLength).Where(j => mask[i * width + j] == 1).Select(j => (int)seq[i * width + j]).ToList();
            prompts.Add(tokenizer.Decode(ids));
        }
        return (prompts, b.NewTokens.Select(t => tokenizer.Decode(t)).ToList());
    }

    PipelineSummary Evaluate(PretrainedModel base_, GoldRubric gold, List<string> prompts, Dictionary<string, double> feedback, Dictionary<string, double> rmDone, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        var e = config.Eval;
        var tokenizer = base_.Tokenizer;
        using var sft = HuggingFaceCheckpoint.LoadCausalLM(Path.Combine(StageDir("sft"), "checkpoint"));
        using var ppo = HuggingFaceCheckpoint.LoadCausalLM(Path.Combine(StageDir("ppo"), "checkpoint"));
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(Path.Combine(StageDir("rm"), "checkpoint"));
        var promptIds = prompts.Select(base_.EncodePrompt).ToList();
        var options = new SamplingOptions { MaxNewTokens = e.MaxNewTokens, Temperature = e.Temperature, Seed = e.Seed };
        var evaluator = new PolicyEvaluator(tokenizer, gold, rm, sft, PadId(tokenizer)) { Progress = Progress };

        var results = new Dictionary<string, PolicyEvaluation>
        {
            ["base"] = evaluator.Sample("base", base_.Model, prompts, promptIds, options, cancel),
            ["sft"] = evaluator.Sample("sft", sft, prompts, promptIds, options, cancel),
            [$"best_of_{e.BestOfN}"] = evaluator.BestOfN(sft, prompts, promptIds, e.BestOfN, options, cancel),
            ["ppo"] = evaluator.Sample("ppo", ppo, prompts, promptIds, options, cancel),
        };
        seconds["eval"] = clock.Elapsed.TotalSeconds;

        var summary = new PipelineSummary
        {
            Policies = results.ToDictionary(kv => kv.Key, kv => kv.Value.Score),
            RmAccuracy = rmDone.GetValueOrDefault("eval_accuracy"),
            AnnotatorGoldAgreement = feedback.GetValueOrDefault("annotator_gold_agreement"),
            StageSeconds = new Dictionary<string, double>(seconds),
        };
        WriteAtomically(Path.Combine(runDir, "summary.json"), JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));

        string goldVsKl = Path.Combine(runDir, "gold_vs_kl.png");
        Charts.GoldVsKl(summary.Policies, goldVsKl);
        var samples = Enumerable.Range(0, Math.Min(e.ShownSamples, prompts.Count)).Select(i => new SampleRow(prompts[i],
            results.ToDictionary(kv => kv.Key, kv => (kv.Value.Texts[i], kv.Value.Gold[i], kv.Value.Proxy[i])))).ToList();
        HtmlReport.Write(Path.Combine(runDir, "report.html"), $"RlhfSharp: {config.Name}", summary.Policies,
            new Dictionary<string, double>
            {
                ["reward model pair accuracy (held-out rankings)"] = summary.RmAccuracy,
                ["annotator agreement with gold"] = summary.AnnotatorGoldAgreement,
                ["annotator temperature τ"] = feedback.GetValueOrDefault("annotator_temperature"),
            },
            [goldVsKl, Path.Combine(StageDir("ppo"), "reward.png"), Path.Combine(StageDir("ppo"), "kl.png"), Path.Combine(StageDir("sft"), "loss.png"), Path.Combine(StageDir("rm"), "accuracy.png")],
            samples, Recipe.Serialize(config));
        return summary;
    }

    static void SaveWithTokenizer(CausalLM model, PretrainedModel base_, string stageDir) =>
        HuggingFaceCheckpoint.Save(model, Path.Combine(stageDir, "checkpoint"), writeExtras: base_.WriteTokenizerFiles);

    static int PadId(ITokenizer t) => t.PadId ?? t.EosId ?? 0;

    static void WriteAtomically(string path, string text)
    {
        File.WriteAllText(path + ".tmp", text);
        File.Move(path + ".tmp", path, overwrite: true);
    }
}
