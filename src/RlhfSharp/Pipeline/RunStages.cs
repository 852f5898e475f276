using RlhfSharp.Algorithms.Dpo;
using RlhfSharp.Algorithms.Grpo;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.RejectionSampling;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Reporting;
using RlhfSharp.Tokenization;
using RlhfSharp.Training;
using TorchSharp;

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
        using var policy = base_.Model.Clone();
        var state = new StageState(Dir("sft"), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("sft"), "metrics.jsonl"), state.SavedStep);
        var trainer = new SftTrainer(policy, config, PadId, base_.Tokenizer.EosId) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        HuggingFaceCheckpoint.Save(policy, Checkpoint("sft"), writeExtras: base_.WriteTokenizerFiles);
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
        var state = new StageState(Dir("rm"), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("rm"), "metrics.jsonl"), state.SavedStep);
        var trainer = new RewardTrainer(rm, config, PadId) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        if (config.NormalizeOnDemonstrations) trainer.NormalizeOn(demonstrations);
        result["reward_mean_offset"] = rm.RewardMean ?? 0;
        HuggingFaceCheckpoint.Save(rm, Checkpoint("rm"), writeExtras: base_.WriteTokenizerFiles);
        Charts.Lines(metrics.Rows, "step", [("accuracy", "train pair accuracy"), ("eval_accuracy", "eval pair accuracy")], "Reward model accuracy",
            "fraction of pairs ordered as people did", Path.Combine(Dir("rm"), "accuracy.png"));
        return result;
    }

    /// <summary>
    /// PPO from <paramref name="policyDir"/> (also the frozen reference) against the reward model in
    /// <paramref name="rmDir"/> (also the critic's starting point when the critic is separate).
    /// </summary>
    public Dictionary<string, double> Ppo(PpoConfig config, string policyDir, string rmDir, List<int[]> prompts, List<SftExample> ptx,
        Func<SampleBatch, IReadOnlyDictionary<string, double>>? rolloutMetrics, CancellationToken cancel)
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        using var reference = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        using var critic = config.Critic == CriticKind.SeparateFromRewardModel ? HuggingFaceCheckpoint.LoadScoreModel(rmDir) : null;
        foreach (var p in rm.parameters()) p.requires_grad = false;
        if (rm.Config.VocabSize != policy.Config.VocabSize)
            throw new RlhfException($"{rmDir}: the reward model's vocabulary ({rm.Config.VocabSize}) differs from the policy's ({policy.Config.VocabSize}); they must share a tokenizer.");
        var state = new StageState(Dir("ppo"), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("ppo"), "metrics.jsonl"), state.SavedStep);
        var trainer = new PpoTrainer(policy, reference, critic, b => rm.Rewards(b.Sequences, b.AttentionMask), new Sampler(policy, base_.Tokenizer), PadId, config)
        {
            Progress = Progress, Metrics = metrics, RolloutMetrics = rolloutMetrics,
        };
        var result = trainer.Train(prompts, ptx, state, cancel);
        HuggingFaceCheckpoint.Save(trainer.Ema ?? policy, Checkpoint("ppo"), writeExtras: base_.WriteTokenizerFiles);
        Charts.Lines(metrics.Rows, "step", [("reward_mean", "proxy reward (RM)"), ("gold_mean", "gold reward")], "PPO: reward of rollouts", "reward", Path.Combine(Dir("ppo"), "reward.png"));
        Charts.Lines(metrics.Rows, "step", [("kl", "KL to SFT (per sample)")], "PPO: KL to the SFT model", "nats", Path.Combine(Dir("ppo"), "kl.png"));
        return result.Where(kv => kv.Key is "reward_mean" or "gold_mean" or "kl" or "kl_coef").ToDictionary();
    }

    /// <summary>
    /// DPO, cDPO, IPO, SimPO or ORPO (<see cref="DpoConfig.Loss"/>) from <paramref name="policyDir"/>, which is also the
    /// frozen reference when the loss has one; writes <c>&lt;run&gt;/&lt;dpo|ipo|simpo|orpo&gt;/checkpoint</c>.
    /// </summary>
    public Dictionary<string, double> Preference(DpoConfig config, string policyDir, List<PreferenceExample> train, List<PreferenceExample> eval, CancellationToken cancel)
    {
        string stage = PreferenceTrainer.StageName(config.Loss);
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        using var reference = config.NeedsReference ? HuggingFaceCheckpoint.LoadCausalLM(policyDir) : null;
        var state = new StageState(Dir(stage), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir(stage), "metrics.jsonl"), state.SavedStep);
        var trainer = new PreferenceTrainer(policy, reference, config, PadId) { Progress = Progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        SavePreferenceStage(policy, stage, metrics);
        return result;
    }

    /// <summary>KTO from <paramref name="policyDir"/> (also the frozen reference); writes <c>&lt;run&gt;/kto/checkpoint</c>.</summary>
    public Dictionary<string, double> Kto(DpoConfig config, string policyDir, List<LabeledExample> train, List<LabeledExample> eval, CancellationToken cancel)
    {
        config = config with { Loss = PreferenceLossKind.Kto };
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        using var reference = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        var state = new StageState(Dir("kto"), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("kto"), "metrics.jsonl"), state.SavedStep);
        var trainer = new PreferenceTrainer(policy, reference, config, PadId) { Progress = Progress, Metrics = metrics };
        var result = trainer.TrainKto(train, eval, state, cancel);
        SavePreferenceStage(policy, "kto", metrics);
        return result;
    }

    void SavePreferenceStage(CausalLM policy, string stage, MetricsLog metrics)
    {
        HuggingFaceCheckpoint.Save(policy, Checkpoint(stage), writeExtras: base_.WriteTokenizerFiles);
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
        Func<SampleBatch, IReadOnlyDictionary<string, double>>? rolloutMetrics, CancellationToken cancel)
    {
        string stage = config.StageName;
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        using var reference = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        foreach (var p in rm.parameters()) p.requires_grad = false;
        if (rm.Config.VocabSize != policy.Config.VocabSize)
            throw new RlhfException($"{rmDir}: the reward model's vocabulary ({rm.Config.VocabSize}) differs from the policy's ({policy.Config.VocabSize}); they must share a tokenizer.");
        var state = new StageState(Dir(stage), config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir(stage), "metrics.jsonl"), state.SavedStep);
        var trainer = new GroupRlTrainer(policy, reference, b => rm.Rewards(b.Sequences, b.AttentionMask), new Sampler(policy, base_.Tokenizer), config)
        {
            Progress = Progress, Metrics = metrics, RolloutMetrics = rolloutMetrics,
        };
        var result = trainer.Train(prompts, state, cancel);
        HuggingFaceCheckpoint.Save(policy, Checkpoint(stage), writeExtras: base_.WriteTokenizerFiles);
        Charts.Lines(metrics.Rows, "step", [("reward_mean", "proxy reward (RM)"), ("gold_mean", "gold reward")], $"{stage}: reward of rollouts", "reward", Path.Combine(Dir(stage), "reward.png"));
        Charts.Lines(metrics.Rows, "step", [("kl", "KL to the reference (per sample)")], $"{stage}: KL to the reference", "nats", Path.Combine(Dir(stage), "kl.png"));
        return result.Where(kv => kv.Key is "reward_mean" or "gold_mean" or "kl" or "zero_std_fraction").ToDictionary();
    }

    /// <summary>
    /// Rejection-sampling fine-tuning from <paramref name="policyDir"/>: best-of-n samples, picked by the reward model in
    /// <paramref name="rmDir"/>, distilled by SFT each round; writes <c>&lt;run&gt;/rs/checkpoint</c>.
    /// </summary>
    public Dictionary<string, double> RejectionSampling(RejectionSamplingConfig config, string policyDir, string rmDir, List<int[]> prompts, CancellationToken cancel)
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        foreach (var p in rm.parameters()) p.requires_grad = false;
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("rs"), "metrics.jsonl"), null); // not resumable: a rerun starts over
        var trainer = new RejectionSamplingTrainer(policy, b => rm.Rewards(b.Sequences, b.AttentionMask), new Sampler(policy, base_.Tokenizer), PadId, base_.Tokenizer.EosId, config)
        {
            Progress = Progress, Metrics = metrics,
        };
        var result = trainer.Train(prompts, cancel);
        HuggingFaceCheckpoint.Save(policy, Checkpoint("rs"), writeExtras: base_.WriteTokenizerFiles);
        Charts.Lines(metrics.Rows, "iteration", [("reward_mean", "mean reward of samples"), ("reward_best_mean", "mean reward of the picks")],
            "Rejection sampling: reward per round", "reward", Path.Combine(Dir("rs"), "reward.png"));
        return result;
    }

    /// <summary>
    /// Online DPO from <paramref name="policyDir"/> (also the frozen reference): pairs sampled from the current policy and
    /// labelled by the reward model in <paramref name="rmDir"/> each round; writes <c>&lt;run&gt;/online_dpo/checkpoint</c>.
    /// </summary>
    public Dictionary<string, double> OnlineDpo(OnlineDpoConfig config, string policyDir, string rmDir, List<int[]> prompts, CancellationToken cancel)
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        using var reference = HuggingFaceCheckpoint.LoadCausalLM(policyDir);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        foreach (var p in rm.parameters()) p.requires_grad = false;
        using var metrics = MetricsLog.Resuming(Path.Combine(Dir("online_dpo"), "metrics.jsonl"), null); // not resumable: a rerun starts over
        var trainer = new OnlineDpoTrainer(policy, reference, b => rm.Rewards(b.Sequences, b.AttentionMask), new Sampler(policy, base_.Tokenizer), PadId, config)
        {
            Progress = Progress, Metrics = metrics,
        };
        var result = trainer.Train(prompts, cancel);
        HuggingFaceCheckpoint.Save(policy, Checkpoint("online_dpo"), writeExtras: base_.WriteTokenizerFiles);
        Charts.Lines(metrics.Rows, "iteration", [("reward_mean", "mean reward of the policy's samples")], "Online DPO: reward per round", "reward",
            Path.Combine(Dir("online_dpo"), "reward.png"));
        return result;
    }

    /// <summary>Prompt + response token ids of every response of each ranking, best first.</summary>
    public List<RankedGroup> Tokenize(IEnumerable<Ranking> rankings, int maxLength) =>
        rankings.Select(r => new RankedGroup(r.Responses.Select(resp =>
            SftExample.FromPromptCompletion(base_.Tokenizer, r.Prompt, resp, maxLength, base_.AddsBos, addEos: false).InputIds).ToList(), r.Margin)).ToList();

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
