using RlhfSharp.Recipes;

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
        RunFolder.Check(runDir, config);
        using var base_ = PretrainedModel.Load(config.Model);
        var tokenizer = base_.Tokenizer;
        var (trainPrompts, evalPrompts) = StoryPrompts.Split(config.Prompts.Train, config.Prompts.Eval, config.Prompts.Seed);
        var gold = new GoldRubric(VaderLexicon.Default, new FluencyScorer(base_.Model, tokenizer) { BatchSize = 64 }, config.Gold);
        // Written only now, once the recipe, the folder and the model have been checked: a failed start leaves nothing.
        RunFolder.WriteConfig(runDir, config);

        var feedback = Stage("feedback", () => Feedback(base_, gold, trainPrompts, cancel));
        var demonstrations = DatasetLoader.LoadDemonstrations(Path.Combine(runDir, "feedback", "demonstrations.jsonl")).Records;
        var rankings = DatasetLoader.LoadRankings(Path.Combine(runDir, "feedback", "rankings.jsonl")).Records;
        var sftExamples = demonstrations.Select(d => SftExample.FromPromptCompletion(tokenizer, d.Prompt, d.Completion, config.Sft.MaxLength, base_.AddsBos)).ToList();

        var stages = new RunStages(base_, runDir) { Progress = Progress };
        var (sftTrain, sftEval) = RunStages.HoldOut(sftExamples);
        Stage("sft", () => stages.Sft(config.Sft, sftTrain, sftEval, cancel));
        var (rmTrain, rmEval) = RunStages.HoldOut(stages.Tokenize(rankings, config.Rm.MaxLength));
        var rm = Stage("rm", () => stages.RewardModel(config.Rm, stages.Checkpoint("sft"), rmTrain, rmEval,
            // Centred on the form it is trained and scored on: prompt + text + EOS.
            demonstrations.Select(d => stages.RewardSequence(d.Prompt, d.Completion, config.Rm.MaxLength)).ToList(), cancel));
        if (config.TrainPrm)
            Stage("prm", () =>
            {
                var (trainRankings, evalRankings) = RunStages.HoldOut(rankings);
                List<Algorithms.ProcessReward.ProcessRewardExample> Examples(List<Ranking> held, out double threshold)
                {
                    var (steps, t) = SentenceStepLabels.Build(gold, [.. held.SelectMany(r => r.Responses.Select(_ => r.Prompt))], [.. held.SelectMany(r => r.Responses)]);
                    threshold = t;
                    return steps.Select(c => Algorithms.ProcessReward.ProcessRewardExample.Create(tokenizer, c, config.Prm.StepSeparator, config.Prm.MaxLength, base_.AddsBos)).ToList();
                }
                var train = Examples(trainRankings, out double threshold);
                var eval = Examples(evalRankings, out _);
                var result = stages.ProcessRewardModel(config.Prm, stages.Checkpoint("sft"), StepSplit.Sentences, train, eval, cancel);
                result["step_label_threshold"] = threshold;
                result["step_label_positive_fraction"] = train.Sum(e => e.Labels.Count(l => l == 1)) / (double)Math.Max(1, train.Sum(e => e.Labels.Count(l => l != Algorithms.ProcessReward.ProcessRewardLoss.Ignore)));
                return result;
            });
        // The hidden gold of every rollout is logged beside the proxy, so over-optimisation shows while it happens.
        Func<SampleBatch, IReadOnlyDictionary<string, double>> goldOfRollouts = b =>
        {
            var (p, t) = RunStages.RolloutTexts(b, tokenizer);
            return new Dictionary<string, double> { ["gold_mean"] = gold.Score(p, t).Average() };
        };
        // Online DPO's pairs (rows 2i, 2i+1) put to the same calibrated annotators: 1 for the answer they prefer.
        var annotators = new AnnotatorPool(gold, config.Feedback.Annotators with { Temperature = feedback.GetValueOrDefault("annotator_temperature") });
        Func<SampleBatch, Tensor> annotatorJudge = b =>
        {
            var (p, t) = RunStages.RolloutTexts(b, tokenizer);
            int pairs = t.Count / 2;
            var choices = annotators.ChoosePairs([.. Enumerable.Range(0, pairs).Select(i => p[2 * i])],
                [.. Enumerable.Range(0, pairs).Select(i => t[2 * i])], [.. Enumerable.Range(0, pairs).Select(i => t[2 * i + 1])]);
            var scores = new float[t.Count];
            for (int i = 0; i < pairs; i++) scores[2 * i + choices[i]] = 1;
            return tensor(scores, device: b.Sequences.device);
        };
        var prompts = trainPrompts.Select(base_.EncodePrompt).ToList();
        var data = new MethodData
        {
            Prompts = () => prompts, PtxExamples = () => sftExamples,
            // Best against worst of each ranking: the clearest preference a ranking holds, and a sample budget near the
            // online methods' (all K(K−1)/2 pairs are the reward model's diet, InstructGPT §3.5).
            Pairs = d => RunStages.HoldOut(rankings.Select(r => new Preference(r.Prompt, r.Responses[0], r.Responses[^1]))
                .Select(p => PreferenceExample.Create(tokenizer, p, d.MaxLength, d.MaxPromptLength, base_.AddsBos)).ToList()),
            // KTO: the best (desirable) and the worst (undesirable) response of each ranking, the same clearest labels,
            // unpaired in TRL's order (all chosen, then all rejected) after the hold-out, so both splits hold both labels
            // (the trainer shuffles them with the seed).
            Labeled = d =>
            {
                var (trainRankings, evalRankings) = RunStages.HoldOut(rankings);
                List<LabeledExample> Unpaired(IEnumerable<Ranking> held) => LabeledCompletion.Unpair(
                        [.. held.Select(r => new Preference(r.Prompt, r.Responses[0], r.Responses[^1]))])
                    .Select(l => LabeledExample.Create(tokenizer, l, d.MaxLength, d.MaxPromptLength, base_.AddsBos)).ToList();
                return (Unpaired(trainRankings), Unpaired(evalRankings));
            },
            // ILQL: every response of each ranking, scored by its rank (best 1 … worst 0), held out by ranking as the RM's.
            Scored = c =>
            {
                var (trainRankings, evalRankings) = RunStages.HoldOut(rankings);
                List<ScoredExample> Score(IEnumerable<Ranking> held) => held.SelectMany(ScoredCompletion.FromRanking)
                    .Select(s => ScoredExample.Create(tokenizer, s, c.MaxLength, c.MaxPromptLength, base_.AddsBos)).ToList();
                return (Score(trainRankings), Score(evalRankings));
            },
            RolloutMetrics = goldOfRollouts,
            OnlineDpoJudge = config.OnlineDpoJudge == OnlineDpoJudge.Annotators ? annotatorJudge : null,
        };
        var trained = new Dictionary<AlignmentMethod, Dictionary<string, double>>();
        foreach (var method in config.Algos.Distinct())
        {
            var spec = MethodTable.Of(method);
            trained[method] = Stage(spec.Stage, () => spec.Run(config, data, stages, cancel));
        }
        // The encoder-decoder rows: a T5 trained on the same demonstrations and rankings.
        var encoderDecoder = config.EncoderDecoder is { } task ? new EncoderDecoderTask(task, base_, runDir) : null;
        var encoderDecoderTrained = encoderDecoder?.Train(demonstrations, rankings, Stage, Progress, cancel);
        var summary = Evaluate(base_, gold, evalPrompts, feedback, rm, (rmTrain.Count, rmEval.Count), trained, (RunStages.HoldOut(rankings).Eval, rmEval), cancel,
            encoderDecoder is null ? null : ((EncoderDecoderTask, Dictionary<AlignmentMethod, Dictionary<string, double>>)?)(encoderDecoder, encoderDecoderTrained!));
        return summary;
    }

    string StageDir(string stage) => Path.Combine(runDir, stage);

    /// <summary>Runs a stage unless its done.json exists; returns the stage's summary numbers either way.</summary>
    Dictionary<string, double> Stage(string name, Func<Dictionary<string, double>> body)
    {
        var state = new StageState(StageDir(name)) { HasCheckpoint = name != "feedback" };
        if (state.IsDone)
        {
            Log?.Invoke($"{name}: already done, skipped");
            var done = state.ReadDone();
            seconds[name] = done.GetValueOrDefault("seconds");
            return done;
        }
        Log?.Invoke(state.SavedStep is int s ? $"{name}: resuming at step {s}" : $"{name}: starting");
        var clock = Stopwatch.StartNew();
        var result = body();
        result["seconds"] = clock.Elapsed.TotalSeconds;
        Directory.CreateDirectory(StageDir(name));
        state.MarkDone(result);
        seconds[name] = result["seconds"];
        Log?.Invoke($"{name}: done in {result["seconds"]:F0} s");
        return result;
    }

    /// <summary>The run-folder stage a method writes (<c>dpo</c> for cDPO too).</summary>
    public static string StageName(AlignmentMethod method) => MethodTable.Of(method).Stage;

    /// <summary>Samples from the base model and has the simulated annotators pick demonstrations and rank samples.</summary>
    Dictionary<string, double> Feedback(PretrainedModel base_, GoldRubric gold, List<string> prompts, CancellationToken cancel)
    {
        var f = config.Feedback;
        var demoPrompts = prompts.Take(f.DemonstrationPrompts).ToList();
        var rankPrompts = prompts.Skip(f.DemonstrationPrompts).Concat(prompts).Take(f.RankingPrompts).ToList();
        var sampler = new Sampler(base_.Model, base_.Tokenizer);
        var options = new SamplingOptions { MaxNewTokens = f.MaxNewTokens, Temperature = f.Temperature, Seed = f.Seed };
        int total = demoPrompts.Count + rankPrompts.Count;
        var demoCandidates = SampleMany(base_, sampler, demoPrompts, f.DemonstrationCandidates, options, 0, total, cancel);
        var rankCandidates = SampleMany(base_, sampler, rankPrompts, f.K, options with { Seed = f.Seed + 1 }, demoPrompts.Count, total, cancel);

        // The hidden gold of every sample, in one batched pass over the sampler's own tokens; the annotators look it up.
        var cache = new CachedReward(gold);
        foreach (var (ps, candidates) in new[] { (demoPrompts, demoCandidates), (rankPrompts, rankCandidates) })
        {
            var flatPrompts = ps.SelectMany((p, i) => candidates[i].Select(_ => p)).ToList();
            var flat = candidates.SelectMany(c => c).ToList();
            cache.Add(flatPrompts, flat.Select(c => c.Text).ToList(), gold.ScoreIds(flat.Select(c => c.Text).ToList(), flat.Select(c => c.PromptIds).ToList(), flat.Select(c => c.NewIds).ToList()));
        }
        var rankTexts = rankCandidates.Select(c => c.Select(x => x.Text).ToList()).ToList();
        var rankGold = rankPrompts.Select((p, i) => cache.Score(Enumerable.Repeat(p, f.K).ToList(), rankTexts[i])).ToList();

        // Calibrate the annotators' noise on pairs of these very samples, then label.
        double tau = AnnotatorPool.Calibrate(rankGold.Select(g => (g[0], g[1])).ToList(), f.TargetAgreement);
        var pool = new AnnotatorPool(cache, f.Annotators with { Temperature = tau });
        var demoLines = demoPrompts.Select((p, i) =>
        {
            var texts = demoCandidates[i].Select(c => c.Text).ToList();
            return new JsonObject { ["prompt"] = p, ["completion"] = texts[pool.PickBest(p, texts)] }.ToJsonString();
        }).ToList();
        int agree = 0, pairs = 0;
        var rankLines = new List<string>();
        for (int i = 0; i < rankPrompts.Count; i++)
        {
            var ranking = pool.Rank(rankPrompts[i], rankTexts[i]);
            var g = rankGold[i];
            for (int a = 0; a < ranking.Length; a++)
                for (int b = a + 1; b < ranking.Length; b++)
                    if (g[ranking[a]] != g[ranking[b]]) { pairs++; if (g[ranking[a]] > g[ranking[b]]) agree++; }
            rankLines.Add(new JsonObject
            {
                ["prompt"] = rankPrompts[i],
                ["responses"] = new JsonArray(rankTexts[i].Select(r => (JsonNode)r!).ToArray()),
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
    List<List<Completion>> SampleMany(PretrainedModel m, Sampler sampler, List<string> prompts, int n, SamplingOptions options, int doneBefore, int total, CancellationToken cancel)
    {
        const int batchPrompts = 16;
        var result = new List<List<Completion>>();
        for (int start = 0; start < prompts.Count; start += batchPrompts)
        {
            cancel.ThrowIfCancellationRequested();
            var chunk = prompts.Skip(start).Take(batchPrompts).ToList();
            var ids = chunk.SelectMany(p => Enumerable.Repeat(m.EncodePrompt(p), n)).ToList();
            var completions = sampler.Generate(ids, options with { Seed = options.Seed + (ulong)start * 31 }, cancel: cancel);
            for (int i = 0; i < chunk.Count; i++) result.Add(completions.Skip(i * n).Take(n).ToList());
            Progress?.Report(new TrainingProgress("feedback", doneBefore + start + chunk.Count, total, new Dictionary<string, double>()));
        }
        return result;
    }

    PipelineSummary Evaluate(PretrainedModel base_, GoldRubric gold, List<string> prompts, Dictionary<string, double> feedback, Dictionary<string, double> rmDone,
        (int Train, int Eval) rmRankings, Dictionary<AlignmentMethod, Dictionary<string, double>> trained,
        (List<Ranking> Texts, List<Algorithms.Reward.RankedGroup> Ids) heldOut, CancellationToken cancel,
        (EncoderDecoderTask Task, Dictionary<AlignmentMethod, Dictionary<string, double>> Trained)? encoderDecoder = null)
    {
        var clock = Stopwatch.StartNew();
        var e = config.Eval;
        var tokenizer = base_.Tokenizer;
        using var sft = HuggingFaceCheckpoint.LoadCausalLM(Path.Combine(StageDir("sft"), "checkpoint"));
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(Path.Combine(StageDir("rm"), "checkpoint"));
        var promptIds = prompts.Select(base_.EncodePrompt).ToList();
        var options = new SamplingOptions { MaxNewTokens = e.MaxNewTokens, Temperature = e.Temperature, Seed = e.Seed };
        var evaluator = new PolicyEvaluator(tokenizer, gold, rm, sft) { Progress = Progress };

        // Best-of-n picked by the process reward model too, from the same candidates: min, product and last-step aggregation.
        using var prm = config.TrainPrm ? ProcessRewardModel.Load(Path.Combine(StageDir("prm"), "checkpoint"), StepAggregation.Min) : null;
        var pickers = new Dictionary<string, Func<List<string>, List<string>, double[]>>();
        double[][]? stepScores = null;
        foreach (var aggregation in prm is null ? [] : new[] { StepAggregation.Min, StepAggregation.Product, StepAggregation.Last })
            pickers[$"best_of_{e.BestOfN}_prm_{aggregation.ToString().ToLowerInvariant()}"] = (p, t) =>
                (stepScores ??= prm!.StepScores(p, t)).Select(s => ProcessRewardModel.Aggregate(s, aggregation)).ToArray();
        var results = new Dictionary<string, PolicyEvaluation>
        {
            ["base"] = evaluator.Sample("base", base_.Model, prompts, promptIds, options, cancel),
            ["sft"] = evaluator.Sample("sft", sft, prompts, promptIds, options, cancel),
        };
        foreach (var (name, r) in evaluator.BestOfN(sft, prompts, promptIds, e.BestOfN, options, pickers, cancel))
            results[name == "" ? $"best_of_{e.BestOfN}" : name] = r;
        foreach (var (method, done) in trained)
        {
            string stage = StageName(method);
            using var policy = HuggingFaceCheckpoint.LoadCausalLM(Path.Combine(StageDir(stage), "checkpoint"));
            // An ILQL policy is graded as it decodes: with its heads' β·(Q − V) (the KL to SFT is then that policy's too).
            IlqlHeadsFile.AttachIfPresent(policy, Path.Combine(StageDir(stage), "checkpoint"));
            var r = evaluator.Sample(stage, policy, prompts, promptIds, options, cancel);
            double trainSeconds = done.GetValueOrDefault("seconds");
            results[stage] = r with
            {
                Score = r.Score with { TrainSeconds = trainSeconds, TrainTokensPerSecond = done.GetValueOrDefault("tokens_processed") / Math.Max(1e-9, trainSeconds) },
            };
        }
        if (encoderDecoder is { } ed)
            foreach (var (name, r) in ed.Task.Evaluate(new Seq2SeqPolicyEvaluator(tokenizer, gold, rm, base_.EncodePrompt) { Progress = Progress }, prompts, options, ed.Trained, cancel))
                results[name] = r;
        var rmOnHeldOut = RewardModelOnHeldOut(rm, gold, heldOut.Texts, heldOut.Ids, base_.Tokenizer.PadId ?? base_.Tokenizer.EosId ?? 0);
        seconds["eval"] = clock.Elapsed.TotalSeconds;

        var summary = new PipelineSummary
        {
            Policies = results.ToDictionary(kv => kv.Key, kv => kv.Value.Score),
            // No held-out rankings (a run too small to spare any): no accuracy, rather than a 0 that reads as a failed RM.
            RmAccuracy = rmDone.TryGetValue("eval_accuracy", out double accuracy) && rmRankings.Eval > 0 ? accuracy : null,
            RmTrainRankings = rmRankings.Train,
            RmEvalRankings = rmRankings.Eval,
            RmGoldAccuracy = rmOnHeldOut.Gold,
            HeldOutAnnotatorGoldAgreement = rmOnHeldOut.Annotators,
            AnnotatorGoldAgreement = feedback.GetValueOrDefault("annotator_gold_agreement"),
            StageSeconds = new Dictionary<string, double>(seconds),
            PrmVsRmBestOfN = pickers.Keys.ToDictionary(name => name, name => PairedDifference.Compute(results[name].Gold, results[$"best_of_{e.BestOfN}"].Gold)),
        };
        WriteAtomically(Path.Combine(runDir, "summary.json"), JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));

        string goldVsKl = Path.Combine(runDir, "gold_vs_kl.png");
        Charts.GoldVsKl(summary.Policies, goldVsKl);
        var samples = Enumerable.Range(0, Math.Min(e.ShownSamples, prompts.Count)).Select(i => new SampleRow(prompts[i],
            results.ToDictionary(kv => kv.Key, kv => (kv.Value.Texts[i], kv.Value.Gold[i], kv.Value.Proxy[i])))).ToList();
        var headline = new Dictionary<string, double>
            {
                ["reward model pair accuracy (held-out rankings)"] = summary.RmAccuracy ?? double.NaN,
                ["reward model pair accuracy against gold (the same held-out responses ordered by the gold rubric)"] = summary.RmGoldAccuracy,
                ["annotator agreement with gold"] = summary.AnnotatorGoldAgreement,
                ["annotator agreement with gold (held-out rankings)"] = summary.HeldOutAnnotatorGoldAgreement,
                ["annotator temperature τ"] = feedback.GetValueOrDefault("annotator_temperature"),
            };
        foreach (var (name, d) in summary.PrmVsRmBestOfN)
            headline[FormattableString.Invariant($"gold of {name} − best_of_{e.BestOfN} (the outcome RM's pick), paired by prompt: 95% interval [{d.Ci95[0]:0.000}, {d.Ci95[1]:0.000}], {d.Wins} prompts better, {d.Losses} worse, {d.Ties} equal")] = d.Mean;
        HtmlReport.Write(Path.Combine(runDir, "report.html"), $"RlhfSharp: {config.Name}", summary.Policies, headline,
            [goldVsKl, .. trained.Keys.SelectMany(m => Directory.GetFiles(StageDir(StageName(m)), "*.png").Order()),
                Path.Combine(StageDir("sft"), "loss.png"), Path.Combine(StageDir("rm"), "accuracy.png")],
            samples, Recipe.Serialize(config));
        return summary;
    }



    /// <summary>
    /// The reward model on the held-out rankings, ordered two ways: by the gold rubric (its pair accuracy against gold) and,
    /// for context on the same pairs, how often the annotators' rankings agree with gold. Next to the accuracy against the
    /// annotators' labels (<see cref="PipelineSummary.RmAccuracy"/>) this tells a weak RM from noisy labels (issue 14):
    /// an RM that learnt gold perfectly from labels that agree with it 74% of the time scores ≈ 0.74 against them, 1 against gold.
    /// </summary>
    static (double Gold, double Annotators) RewardModelOnHeldOut(ScoreModel rm, GoldRubric gold, List<Ranking> texts, List<Algorithms.Reward.RankedGroup> ids, int padId)
    {
        if (texts.Count == 0) return (double.NaN, double.NaN);
        var scores = RewardModelScores.Score(rm, ids, padId);
        var goldScores = texts.Select(r => (IReadOnlyList<double>)gold.Score(Enumerable.Repeat(r.Prompt, r.Responses.Count).ToList(), r.Responses)).ToList();
        // The annotators' order as numbers: K − 1 for their best, 0 for their worst.
        var annotatorOrder = texts.Select(r => (IReadOnlyList<double>)Enumerable.Range(0, r.Responses.Count).Select(k => (double)(r.Responses.Count - 1 - k)).ToList()).ToList();
        return (RewardModelAccuracy.AgainstTruth(scores.Select(s => (IReadOnlyList<double>)s).ToList(), goldScores).Accuracy,
            RewardModelAccuracy.AgainstTruth(annotatorOrder, goldScores).Accuracy);
    }

    static void WriteAtomically(string path, string text) => Durable.WriteAllText(path, text);
}
