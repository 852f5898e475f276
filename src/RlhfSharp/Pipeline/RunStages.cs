namespace RlhfSharp.Pipeline;

/// <summary>
/// The three InstructGPT stages as they run inside a run folder (<c>&lt;run&gt;/sft</c>, <c>rm</c>, <c>ppo</c>): each
/// trains with resumable state, writes metrics.jsonl, an HF checkpoint with the tokenizer, and its plots. Shared by
/// <c>rlhf pipeline</c> and the stage commands <c>rlhf sft|rm|ppo</c>.
/// </summary>
public sealed class RunStages(PretrainedModel base_, string runDir)
{
    public IProgress<TrainingProgress>? Progress { get; init; }

    public string Dir(string stage) => Path.Combine(runDir, stage);
    public string Checkpoint(string stage) => Path.Combine(Dir(stage), "checkpoint");
    int PadId => base_.Tokenizer.PadId ?? base_.Tokenizer.EosId ?? 0;

    /// <summary>SFT of the base model on demonstrations (loss on responses only).</summary>
    public Dictionary<string, double> Sft(SftConfig config, List<SftExample> train, List<SftExample> eval, CancellationToken cancel)
    {
        var dtype = base_.Model.parameters().First().dtype;
        TrainingMemory.Estimate(base_.Model.Config, dtype, config.Lora, config.BatchSize, config.MaxLength, config.GradientCheckpointing,
            config.LogprobChunkSize, frozenBytes: MemoryBudget.WeightBytes(base_.Model.Config, dtype, scoreHead: false), config.Optimizer).Check("sft");
        using var policy = base_.Model.Clone();
        bool lora = UseLora(policy, config.Lora, config.Seed, "sft");
        config.CheckpointLayers(policy, "sft");
        var state = new StageState(Dir("sft"), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("sft"), "metrics.jsonl"), state.SavedStep);
        var trainer = new SftTrainer(policy, config, PadId, base_.Tokenizer.EosId) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        SaveCheckpoint(policy, "sft", lora ? BaseFolder() : null);
        Charts.Lines(metrics.Rows, "step", [("loss", "train loss"), ("eval_loss", "eval loss")], "SFT loss (response tokens)", "nats/token", Path.Combine(Dir("sft"), "loss.png"));
        return result;
    }

    /// <summary>
    /// A reward model initialised from <paramref name="initDir"/> (InstructGPT starts it from the SFT model with a new
    /// scalar head, §3.5), trained on rankings, then shifted so <paramref name="demonstrations"/> score 0 on average.
    /// </summary>
    public Dictionary<string, double> RewardModel(RewardConfig config, string initDir, List<RankedGroup> train, List<RankedGroup> eval,
        IReadOnlyList<int[]> demonstrations, CancellationToken cancel)
    {
        torch.manual_seed((long)config.Seed); // the new score head starts the same on every run
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(initDir, allowNewHead: true);
        bool lora = UseLora(rm, config.Lora, config.Seed, "rm");
        config.CheckpointLayers(rm, "rm");
        var state = new StageState(Dir("rm"), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("rm"), "metrics.jsonl"), state.SavedStep);
        var trainer = new RewardTrainer(rm, config, PadId) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        if (config.NormalizeOnDemonstrations) trainer.NormalizeOn(demonstrations);
        result["reward_mean_offset"] = rm.RewardMean ?? 0;
        SaveCheckpoint(rm, "rm", lora ? initDir : null);
        Charts.Lines(metrics.Rows, "step", [("accuracy", "train pair accuracy"), ("eval_accuracy", "eval pair accuracy")], "Reward model accuracy",
            "fraction of pairs ordered as people did", Path.Combine(Dir("rm"), "accuracy.png"));
        return result;
    }

    /// <summary>
    /// A process reward model initialised from <paramref name="initDir"/> with a new two-label head (TRL's PRMTrainer starts a
    /// token-classification head on the policy's base), trained on step labels; writes <c>&lt;run&gt;/prm/checkpoint</c> with
    /// its <c>prm.json</c> (separator and step split).
    /// </summary>
    public Dictionary<string, double> ProcessRewardModel(Algorithms.ProcessReward.ProcessRewardConfig config, string initDir, StepSplit split,
        List<Algorithms.ProcessReward.ProcessRewardExample> train, List<Algorithms.ProcessReward.ProcessRewardExample> eval, CancellationToken cancel)
    {
        config.Validate("prm");
        torch.manual_seed((long)config.Seed); // the new head starts the same on every run
        using var prm = HuggingFaceCheckpoint.LoadScoreModel(initDir, allowNewHead: true, numLabels: 2);
        bool lora = UseLora(prm, config.Lora, config.Seed, "prm");
        config.CheckpointLayers(prm, "prm");
        var state = new StageState(Dir("prm"), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("prm"), "metrics.jsonl"), state.SavedStep);
        var trainer = new Algorithms.ProcessReward.ProcessRewardTrainer(prm, config, PadId) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        SaveCheckpoint(prm, "prm", lora ? initDir : null);
        if (DataParallel.IsRoot) Rewards.ProcessRewardModel.WriteSettings(Checkpoint("prm"), config.StepSeparator, split, config.MaxLength);
        Charts.Lines(metrics.Rows, "step", [("step_accuracy", "train step accuracy"), ("eval_step_accuracy", "eval step accuracy")], "Process reward model accuracy",
            "fraction of steps classified as labelled", Path.Combine(Dir("prm"), "accuracy.png"));
        return result;
    }

    /// <summary>
    /// PPO from <paramref name="policyDir"/> (also the frozen reference) against the reward model in
    /// <paramref name="rmDir"/> (also the critic's starting point when the critic is separate).
    /// </summary>
    public Dictionary<string, double> Ppo(PpoConfig config, string policyDir, string rmDir, List<int[]> prompts, List<SftExample> ptx,
        Func<SampleBatch, IReadOnlyDictionary<string, double>>? rolloutMetrics, CancellationToken cancel, IReadOnlyList<RewardSource>? rewards = null)
        => ActorCritic("ppo", "PPO", config, policyDir, rmDir, prompts, ptx, rolloutMetrics, cancel, rewards, policy => null, null, null);

    /// <summary>
    /// NLPO: PPO (<paramref name="ppo"/>) whose actor only takes the tokens of its masking policy's top-p set
    /// (<paramref name="nlpo"/>), in rollouts and in the loss; writes <c>&lt;run&gt;/nlpo</c>.
    /// </summary>
    public Dictionary<string, double> Nlpo(PpoConfig ppo, NlpoConfig nlpo, string policyDir, string rmDir, List<int[]> prompts, List<SftExample> ptx,
        Func<SampleBatch, IReadOnlyDictionary<string, double>>? rolloutMetrics, CancellationToken cancel, IReadOnlyList<RewardSource>? rewards = null)
    {
        var tokenizer = base_.Tokenizer;
        // RL4LMs never masks the tokenizer's all_special_ids (causal_policy.py generate → logits processor), so a story can always end.
        int[] special = [.. tokenizer.SpecialIds];
        return ActorCritic("nlpo", "NLPO", ppo, policyDir, rmDir, prompts, ptx, rolloutMetrics, cancel, rewards,
            policy => new MaskingPolicy(policy, nlpo, special), null, null);
    }

    /// <summary>A2C on PPO's rollouts, critic and KL-shaped reward (<paramref name="ppo"/> as <paramref name="a2c"/> adjusts it); writes <c>&lt;run&gt;/a2c</c>.</summary>
    public Dictionary<string, double> A2c(PpoConfig ppo, A2cConfig a2c, string policyDir, string rmDir, List<int[]> prompts, List<SftExample> ptx,
        Func<SampleBatch, IReadOnlyDictionary<string, double>>? rolloutMetrics, CancellationToken cancel, IReadOnlyList<RewardSource>? rewards = null)
    {
        var config = a2c.Apply(ppo);
        return ActorCritic("a2c", "A2C", config, policyDir, rmDir, prompts, ptx, rolloutMetrics, cancel, rewards, policy => null,
            (lp, old, adv, mask) => A2cLoss.Policy(lp, old, adv, mask, config.Reduction),
            (v, _, ret, mask) => A2cLoss.Value(v, ret, mask, config.Reduction));
    }

    /// <summary>The trainer PPO, NLPO and A2C share: each supplies its action space and losses (null: PPO's).</summary>
    Dictionary<string, double> ActorCritic(string stage, string title, PpoConfig config, string policyDir, string rmDir, List<int[]> prompts, List<SftExample> ptx,
        Func<SampleBatch, IReadOnlyDictionary<string, double>>? rolloutMetrics, CancellationToken cancel, IReadOnlyList<RewardSource>? rewards,
        Func<CausalLM, IActionSpaceMask?> actionSpace, Func<Tensor, Tensor, Tensor, Tensor, PolicyLossOutput>? policyLoss,
        Func<Tensor, Tensor, Tensor, Tensor, ValueLossOutput>? valueLoss)
    {
        // A separate critic trains too: its weights, gradient and two moments, four times its float32 weights; with LoRA
        // its base is frozen, so once (the adapters are small).
        long critic4 = config.Critic == CriticKind.SeparateFromRewardModel ? (config.Lora is null ? 4 : 1) * ModelBytes(rmDir, "float32") : 0;
        CheckMemory("ppo", policyDir, config, config.ActorOptimizer, config.MiniBatchSize, LongestPrompt(prompts) + config.MaxNewTokens,
            config.Lora is null ? config.ReferenceDtype : null, RewardModelBytes(rewards, rmDir) + critic4);
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        bool lora = UseLora(policy, config.Lora, config.Seed, "ppo"); // NLPO and A2C read the ppo section too
        config.CheckpointLayers(policy, "ppo");
        using var reference = Reference(policy, policyDir, lora, config.ReferenceDtype, "ppo");
        // ppo.shared_base: a reward adapter trained on the policy's base, held in the policy's dtype, scores on the policy's own
        // base tensors, and the critic is a trainable copy of it there (SharedBase); other reward models load as their own.
        var baseDtype = policy.parameters().First().dtype;
        Func<string, ScalarType, ScoreModel?>? onBase = config.SharedBase
            ? (dir, dtype) => dtype == baseDtype && SharedBase.Fits(policyDir, dir) ? SharedBase.RewardModel(policy, policyDir, dir) : null
            : null;
        using var reward = new RolloutReward(rewards ?? [], rmDir, policy.Config.VocabSize, base_.Tokenizer, onBase);
        using var critic = config.Critic != CriticKind.SeparateFromRewardModel ? null
            : config.SharedBase ? SharedBase.Critic(policy, policyDir, rmDir)
            : HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        if (critic is not null && !config.SharedBase) UseLora(critic, config.Lora, config.Seed + 1, "ppo"); // OpenRLHF puts LoRA on the critic too
        if (critic is not null) config.CheckpointLayers(critic, "ppo");
        var space = actionSpace(policy);
        using var _ = space as IDisposable;
        var state = new StageState(Dir(stage), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir(stage), "metrics.jsonl"), state.SavedStep);
        var trainer = new PpoTrainer(policy, reference, critic, reward.Score, new Sampler(policy, base_.Tokenizer), PadId, config)
        {
            Progress = Progress, Metrics = metrics, RolloutMetrics = rolloutMetrics,
            Stage = stage, ActionSpace = space, PolicyLoss = policyLoss, ValueLoss = valueLoss,
        };
        var result = trainer.Train(prompts, ptx, state, cancel);
        result["tokens_processed"] = policy.TokensProcessed;
        SaveCheckpoint(trainer.Ema ?? policy, stage, lora ? policyDir : null);
        Charts.Lines(metrics.Rows, "step", [("reward_mean", "proxy reward (RM)"), ("gold_mean", "gold reward")], $"{title}: reward of rollouts", "reward", Path.Combine(Dir(stage), "reward.png"));
        Charts.Lines(metrics.Rows, "step", [("kl", "KL to SFT (per sample)")], $"{title}: KL to the SFT model", "nats", Path.Combine(Dir(stage), "kl.png"));
        if (metrics.Rows.Any(r => r.ContainsKey("gold_mean")))
            Charts.Lines(metrics.Rows, "kl", [("gold_mean", "gold reward"), ("reward_mean", "proxy reward (RM)")],
                $"{title}: reward of rollouts against their KL to SFT (each point a step)", "reward", Path.Combine(Dir(stage), "gold_vs_kl.png"));
        return result.Where(kv => kv.Key is "reward_mean" or "gold_mean" or "kl" or "kl_coef" or "tokens_processed").ToDictionary();
    }

    /// <summary>
    /// DPO, cDPO, IPO, SimPO or ORPO (<see cref="DpoConfig.Loss"/>) from <paramref name="policyDir"/>, which is also the
    /// frozen reference when the loss has one; writes <c>&lt;run&gt;/&lt;dpo|ipo|simpo|orpo&gt;/checkpoint</c>.
    /// </summary>
    public Dictionary<string, double> Preference(DpoConfig config, string policyDir, List<PreferenceExample> train, List<PreferenceExample> eval, CancellationToken cancel)
    {
        string stage = PreferenceTrainer.StageName(config.Loss);
        CheckMemory("dpo", policyDir, config, config.Optimizer, 2 * config.BatchSize, config.MaxLength, config.NeedsReference && config.Lora is null ? config.ReferenceDtype : null);
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        bool lora = UseLora(policy, config.Lora, config.Seed, "dpo");
        config.CheckpointLayers(policy, "dpo");
        using var reference = config.NeedsReference ? Reference(policy, policyDir, lora, config.ReferenceDtype, "dpo") : null;
        var state = new StageState(Dir(stage), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir(stage), "metrics.jsonl"), state.SavedStep);
        var trainer = new PreferenceTrainer(policy, reference, config, PadId) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        result["tokens_processed"] = policy.TokensProcessed;
        SavePreferenceStage(policy, stage, metrics, lora ? policyDir : null);
        return result;
    }

    /// <summary>KTO from <paramref name="policyDir"/> (also the frozen reference); writes <c>&lt;run&gt;/kto/checkpoint</c>.</summary>
    public Dictionary<string, double> Kto(DpoConfig config, string policyDir, List<LabeledExample> train, List<LabeledExample> eval, CancellationToken cancel)
    {
        config = config with { Loss = PreferenceLossKind.Kto };
        CheckMemory("dpo", policyDir, config, config.Optimizer, 2 * config.BatchSize, config.MaxLength, config.Lora is null ? config.ReferenceDtype : null);
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        bool lora = UseLora(policy, config.Lora, config.Seed, "dpo");
        config.CheckpointLayers(policy, "dpo");
        using var reference = Reference(policy, policyDir, lora, config.ReferenceDtype, "dpo");
        var state = new StageState(Dir("kto"), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("kto"), "metrics.jsonl"), state.SavedStep);
        var trainer = new PreferenceTrainer(policy, reference, config, PadId) { Progress = Progress, Metrics = metrics };
        var result = trainer.TrainKto(train, eval, state, cancel);
        result["tokens_processed"] = policy.TokensProcessed;
        SavePreferenceStage(policy, "kto", metrics, lora ? policyDir : null);
        return result;
    }

    void SavePreferenceStage(CausalLM policy, string stage, MetricsLog metrics, string? loraBase)
    {
        SaveCheckpoint(policy, stage, loraBase);
        Charts.Lines(metrics.Rows, "step", [("loss", "train loss"), ("eval_loss", "eval loss")], $"{stage.ToUpperInvariant()} loss", "loss", Path.Combine(Dir(stage), "loss.png"));
        Charts.Lines(metrics.Rows, "step", [("rewards/margins", "train reward margin"), ("eval_margin", "eval reward margin")],
            $"{stage.ToUpperInvariant()}: implicit reward margin (chosen − rejected)", "reward", Path.Combine(Dir(stage), "margin.png"));
    }

    /// <summary>
    /// Critic-free online RL (GRPO, RLOO, REINFORCE++, ReMax as <see cref="GroupRlConfig.Estimator"/> says) from
    /// <paramref name="policyDir"/> (also the frozen reference) against the reward model in <paramref name="rmDir"/>,
    /// in the stage folder named after the estimator (<c>&lt;run&gt;/grpo</c>, <c>rloo</c>, …).
    /// </summary>
    public Dictionary<string, double> GroupRl(GroupRlConfig config, string policyDir, string rmDir, List<int[]> prompts,
        Func<SampleBatch, IReadOnlyDictionary<string, double>>? rolloutMetrics, CancellationToken cancel, IReadOnlyList<RewardSource>? rewards = null)
    {
        string stage = config.StageName;
        CheckMemory(stage, policyDir, config, config.Optimizer, config.MiniBatchSize, LongestPrompt(prompts) + config.MaxNewTokens,
            config.Lora is null ? config.ReferenceDtype : null, RewardModelBytes(rewards, rmDir));
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        bool lora = UseLora(policy, config.Lora, config.Seed, "grpo");
        config.CheckpointLayers(policy, "grpo");
        using var reference = Reference(policy, policyDir, lora, config.ReferenceDtype, stage);
        using var reward = new RolloutReward(rewards ?? [], rmDir, policy.Config.VocabSize, base_.Tokenizer);
        var state = new StageState(Dir(stage), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir(stage), "metrics.jsonl"), state.SavedStep);
        var trainer = new GroupRlTrainer(policy, reference, reward.Score, new Sampler(policy, base_.Tokenizer), config)
        {
            Progress = Progress, Metrics = metrics, RolloutMetrics = rolloutMetrics,
        };
        var result = trainer.Train(prompts, state, cancel);
        result["tokens_processed"] = policy.TokensProcessed;
        SaveCheckpoint(policy, stage, lora ? policyDir : null);
        Charts.Lines(metrics.Rows, "step", [("reward_mean", "proxy reward (RM)"), ("gold_mean", "gold reward")], $"{stage}: reward of rollouts", "reward", Path.Combine(Dir(stage), "reward.png"));
        Charts.Lines(metrics.Rows, "step", [("kl", "KL to the reference (per sample)")], $"{stage}: KL to the reference", "nats", Path.Combine(Dir(stage), "kl.png"));
        return result.Where(kv => kv.Key is "reward_mean" or "gold_mean" or "kl" or "zero_std_fraction" or "tokens_processed").ToDictionary();
    }

    /// <summary>
    /// Rejection-sampling fine-tuning from <paramref name="policyDir"/>: best-of-n samples, picked by the reward model in
    /// <paramref name="rmDir"/>, distilled by SFT each round; writes <c>&lt;run&gt;/rs/checkpoint</c>.
    /// </summary>
    public Dictionary<string, double> RejectionSampling(RejectionSamplingConfig config, string policyDir, string rmDir, List<int[]> prompts, CancellationToken cancel,
        IReadOnlyList<RewardSource>? rewards = null)
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        bool lora = UseLora(policy, config.Sft.Lora, config.Seed, "rs.sft");
        config.Sft.CheckpointLayers(policy, "rs.sft");
        using var reward = new RolloutReward(rewards ?? [], rmDir, policy.Config.VocabSize, base_.Tokenizer);
        using var metrics = new MetricsLog(Path.Combine(Dir("rs"), "metrics.jsonl"));
        var trainer = new RejectionSamplingTrainer(policy, reward.Score, new Sampler(policy, base_.Tokenizer), PadId, base_.Tokenizer.EosId, config)
        {
            Progress = Progress, Metrics = metrics,
        };
        var result = trainer.Train(prompts, new StageState(Dir("rs")), cancel);
        result["tokens_processed"] = policy.TokensProcessed;
        SaveCheckpoint(policy, "rs", lora ? policyDir : null);
        Charts.Lines(metrics.Rows, "iteration", [("reward_mean", "mean reward of samples"), ("reward_best_mean", "mean reward of the picks")],
            "Rejection sampling: reward per round", "reward", Path.Combine(Dir("rs"), "reward.png"));
        return result;
    }

    /// <summary>
    /// Online DPO from <paramref name="policyDir"/> (also the frozen reference): pairs sampled from the current policy and
    /// labelled by the reward model in <paramref name="rmDir"/> each round; writes <c>&lt;run&gt;/online_dpo/checkpoint</c>.
    /// </summary>
    /// <param name="judge">Labels the pairs instead of the rewards (the simulated annotators: 1 for the preferred answer of each pair).</param>
    public Dictionary<string, double> OnlineDpo(OnlineDpoConfig config, string policyDir, string rmDir, List<int[]> prompts, CancellationToken cancel,
        IReadOnlyList<RewardSource>? rewards = null, Func<SampleBatch, Tensor>? judge = null)
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        bool lora = UseLora(policy, config.Dpo.Lora, config.Seed, "online_dpo.dpo");
        config.Dpo.CheckpointLayers(policy, "online_dpo.dpo");
        using var reference = Reference(policy, policyDir, lora, config.Dpo.ReferenceDtype, "online_dpo.dpo");
        using var reward = judge is null ? new RolloutReward(rewards ?? [], rmDir, policy.Config.VocabSize, base_.Tokenizer) : null;
        using var metrics = new MetricsLog(Path.Combine(Dir("online_dpo"), "metrics.jsonl"));
        var trainer = new OnlineDpoTrainer(policy, reference, judge ?? reward!.Score, new Sampler(policy, base_.Tokenizer), PadId, config)
        {
            Progress = Progress, Metrics = metrics,
        };
        var result = trainer.Train(prompts, new StageState(Dir("online_dpo")), cancel);
        result["tokens_processed"] = policy.TokensProcessed;
        SaveCheckpoint(policy, "online_dpo", lora ? policyDir : null);
        Charts.Lines(metrics.Rows, "iteration", [("reward_mean", "mean reward of the policy's samples")], "Online DPO: reward per round", "reward",
            Path.Combine(Dir("online_dpo"), "reward.png"));
        return result;
    }

    /// <summary>
    /// ILQL from <paramref name="policyDir"/> on scored completions: the policy and new <see cref="IlqlHeads"/> (seeded)
    /// train together; writes <c>&lt;run&gt;/ilql/checkpoint</c> with the heads beside the model (<see cref="IlqlHeadsFile"/>).
    /// </summary>
    public Dictionary<string, double> Ilql(IlqlConfig config, string policyDir, List<ScoredExample> train, List<ScoredExample> eval, CancellationToken cancel)
    {
        if (config.Lora is not null) throw new RlhfException("ilql.lora: ILQL trains the whole model with its heads (trlX num_layers_unfrozen = -1); LoRA is not supported yet.");
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        config.CheckpointLayers(policy, "ilql");
        torch.manual_seed((long)config.Seed); // the new heads start the same on every run
        using var heads = new IlqlHeads(policy.model.OutputSize, policy.Config.VocabSize, config.TwoQs, policy.parameters().First().dtype);
        var state = new StageState(Dir("ilql"), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("ilql"), "metrics.jsonl"), state.SavedStep);
        var trainer = new IlqlTrainer(policy, heads, config, PadId) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        result["tokens_processed"] = policy.TokensProcessed;
        if (DataParallel.IsRoot)
            HuggingFaceCheckpoint.Save(policy, Checkpoint("ilql"), writeExtras: dir =>
            {
                base_.WriteTokenizerFiles(dir);
                IlqlHeadsFile.Save(heads, dir, config.Alpha, config.DecodeBeta);
            });
        Charts.Lines(metrics.Rows, "step", [("loss_q", "TD loss (Q)"), ("loss_v", "expectile loss (V)"), ("loss_awac", "AWAC (LM) loss")], "ILQL losses", "loss",
            Path.Combine(Dir("ilql"), "loss.png"));
        Charts.Lines(metrics.Rows, "step", [("qvalues_mean", "Q of the data's actions"), ("values_mean", "V")], "ILQL: values", "normalised reward",
            Path.Combine(Dir("ilql"), "values.png"));
        return result.Where(kv => kv.Key is "loss" or "loss_q" or "loss_v" or "loss_awac" or "eval_loss" or "tokens_processed").ToDictionary();
    }

    /// <summary>
    /// Refuses a stage whose training cannot fit in memory (<see cref="TrainingMemory"/>) before a weight of
    /// <paramref name="policyDir"/> is read: the policy in float32 on <paramref name="rows"/> × <paramref name="tokens"/>,
    /// a frozen reference in <paramref name="referenceDtype"/> (null: none, or the policy's own base under LoRA), and
    /// <paramref name="otherBytes"/> of further roles. A folder without config.json (a PEFT adapter) is left to the load's check.
    /// </summary>
    static void CheckMemory(string section, string policyDir, StageConfig config, OptimizerConfig optimizer, int rows, int tokens, string? referenceDtype, long otherBytes = 0)
    {
        if (ConfigOf(policyDir) is not { } c) return;
        long reference = referenceDtype is null ? 0 : MemoryBudget.WeightBytes(c, Models.ModelDtype.Parse(referenceDtype, $"{section}.reference_dtype"), scoreHead: false);
        TrainingMemory.Estimate(c, ScalarType.Float32, config.Lora, rows, Math.Min(tokens, c.MaxPositions), config.GradientCheckpointing,
            config.LogprobChunkSize, reference + otherBytes, optimizer).Check(section);
    }

    /// <summary>Bytes of the weights in <paramref name="dir"/> held in <paramref name="dtype"/>; 0 when no config.json says (no RM, an adapter).</summary>
    static long ModelBytes(string dir, string dtype) =>
        ConfigOf(dir) is { } c ? MemoryBudget.WeightBytes(c, Models.ModelDtype.Parse(dtype, "dtype"), scoreHead: true) : 0;

    /// <summary>The weights of the reward models <paramref name="rewards"/> load (<see cref="RolloutReward"/>: <c>[rm]</c> when empty), in their dtypes.</summary>
    static long RewardModelBytes(IReadOnlyList<RewardSource>? rewards, string rmDir) =>
        (rewards is null || rewards.Count == 0 ? [new RewardSource()] : rewards).Where(r => r.Source == RewardSourceKind.Rm)
            .Sum(r => ModelBytes(r.Path ?? rmDir, r.Dtype));

    static Models.TransformerConfig? ConfigOf(string dir)
    {
        string path = Path.Combine(dir, "config.json");
        return File.Exists(path) && !Models.T5.T5Config.IsT5(dir) ? Models.TransformerConfig.Load(path) : null;
    }

    static int LongestPrompt(IReadOnlyList<int[]> prompts) => prompts.Count == 0 ? 0 : prompts.Max(p => p.Length);

    /// <summary>Attaches LoRA adapters when the stage's config asks for them (seeded, so a rerun starts from the same A).</summary>
    static bool UseLora(torch.nn.Module model, LoraConfig? lora, ulong seed, string section)
    {
        if (lora is null) return false;
        lora.Validate(section);
        torch.manual_seed((long)seed);
        LoraModel.Attach(model, lora);
        return true;
    }

    /// <summary>
    /// The frozen reference: with LoRA, the policy itself with its adapters switched off (one copy of the weights),
    /// else a second copy loaded from <paramref name="policyDir"/>.
    /// </summary>
    /// <param name="dtype">The stage's <c>reference_dtype</c> (float32 under LoRA), named by <paramref name="section"/> in errors.</param>
    static CausalLM Reference(CausalLM policy, string policyDir, bool lora, string dtype, string section) =>
        lora ? policy.WithoutAdapters() : HuggingFaceCheckpoint.LoadCausalLM(policyDir, Models.ModelDtype.Parse(dtype, $"{section}.reference_dtype"));

    /// <summary>
    /// A stage's checkpoint: the full HF model, or, when LoRA trained, the PEFT adapter folder on top of
    /// <paramref name="loraBase"/> (which later stages and <c>--model</c> load with the adapters merged).
    /// </summary>
    void SaveCheckpoint(torch.nn.Module model, string stage, string? loraBase)
    {
        if (!DataParallel.IsRoot) return; // under mpirun the ranks hold the same weights: rank 0 writes them
        if (loraBase is not null) PeftAdapter.Save(model, Checkpoint(stage), loraBase, base_.WriteTokenizerFiles);
        else HuggingFaceCheckpoint.Save(model, Checkpoint(stage), writeExtras: base_.WriteTokenizerFiles);
    }

    /// <summary>The HF folder a later stage starts from: the run's checkpoint of <paramref name="stage"/>, else the base model (<see cref="BaseFolder"/>).</summary>
    public string StartingPoint(string stage) => Directory.Exists(Checkpoint(stage)) ? Checkpoint(stage) : BaseFolder();

    /// <summary>The run's checkpoint of <paramref name="stage"/>, which must exist (<paramref name="command"/> writes it).</summary>
    public string RequireCheckpoint(string stage, string command) => Directory.Exists(Checkpoint(stage))
        ? Checkpoint(stage)
        : throw new RlhfException($"{Checkpoint(stage)} not found: run '{command}' with the same --out first.");

    /// <summary>The base model as an HF folder (adapters name their base; a llama2.c file is written out once as <c>&lt;run&gt;/base/checkpoint</c>).</summary>
    string BaseFolder()
    {
        if (Directory.Exists(base_.Path)) return base_.Path;
        if (!Directory.Exists(Checkpoint("base")) && DataParallel.IsRoot)
            HuggingFaceCheckpoint.Save(base_.Model, Checkpoint("base"), writeExtras: base_.WriteTokenizerFiles);
        DataParallel.Barrier(); // the other ranks read what rank 0 wrote
        return Checkpoint("base");
    }

    /// <summary>Prompt + response + EOS token ids of every response of each ranking, best first (<see cref="RewardSequence"/>).</summary>
    public List<RankedGroup> Tokenize(IEnumerable<Ranking> rankings, int maxLength) =>
        rankings.Select(r => new RankedGroup(r.Responses.Select(resp => RewardSequence(r.Prompt, resp, maxLength)).ToList(), r.Margin)).ToList();

    /// <summary>
    /// Prompt + completion + EOS, at most <paramref name="maxLength"/> ids with the EOS kept: the form the reward model
    /// trains, centres and scores on (<see cref="RewardModelInput"/>).
    /// </summary>
    public int[] RewardSequence(string prompt, string completion, int maxLength) => EndWithEos(
        SftExample.FromPromptCompletion(base_.Tokenizer, prompt, completion, int.MaxValue, base_.AddsBos, addEos: false).InputIds, maxLength);

    /// <summary>Token ids (e.g. an SFT example's) ending in EOS within <paramref name="maxLength"/>, for the reward model.</summary>
    public int[] EndWithEos(int[] ids, int maxLength) => RewardModelInput.EndWithEos(ids,
        base_.Tokenizer.EosId ?? throw new RlhfException("the tokenizer has no EOS id: a reward model scores sequences ending in EOS."), base_.Tokenizer.EosIds, maxLength);

    /// <summary>Prompt and new text of each rollout row (the prompt is the masked-in part of the left-padded prompt).</summary>
    public static (List<string> Prompts, List<string> Texts) RolloutTexts(SampleBatch b, ITokenizer tokenizer)
    {
        var seq = b.Sequences.cpu().data<long>().ToArray();
        var mask = b.AttentionMask.cpu().data<long>().ToArray();
        int width = (int)b.Sequences.shape[1];
        var prompts = new List<string>();
        for (int i = 0; i < b.NewTokens.Length; i++)
            prompts.Add(tokenizer.Decode(Enumerable.Range(0, b.PromptLength).Where(j => mask[i * width + j] == 1).Select(j => (int)seq[i * width + j]).ToList()));
        return (prompts, b.NewTokens.Select(t => tokenizer.Decode(t)).ToList());
    }

    /// <summary>Splits off the last tenth (at least one) for evaluation.</summary>
    public static (List<T> Train, List<T> Eval) HoldOut<T>(IReadOnlyList<T> items)
    {
        int eval = Math.Max(1, items.Count / 10);
        if (items.Count < 2) return (items.ToList(), []);
        return (items.Take(items.Count - eval).ToList(), items.Skip(items.Count - eval).ToList());
    }
}
