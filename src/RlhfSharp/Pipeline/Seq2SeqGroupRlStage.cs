namespace RlhfSharp.Pipeline;

/// <summary>
/// <c>rlhf grpo</c>, <c>rloo</c>, <c>reinforce-pp</c>, <c>reinforce-pp-baseline</c> and <c>remax</c> when the model is an
/// encoder-decoder (T5): the decoder-only <see cref="GroupRlTrainer"/> with the policy and reference seen as
/// <see cref="Seq2SeqActor"/>s, as <see cref="Seq2SeqPpoStage"/> does for PPO: prompts from <c>ppo_prompts</c> (with EOS,
/// as T5's tokenizer gives them) go to the encoder, each group's G samples come from the decoder, and the token
/// log-probs, k3 KL and advantages are over the decoder's tokens. It starts from the run's SFT checkpoint (else the base
/// model), which is also the frozen reference (or the policy with its adapters off under LoRA). Rewards score the
/// decoded text (the recipe's text sources or a reward model reading it with its own tokenizer), as for T5 PPO.
/// </summary>
public static class Seq2SeqGroupRlStage
{
    /// <summary>The estimator of each group-RL command.</summary>
    public static AdvantageEstimator EstimatorOf(string command) => command switch
    {
        "grpo" => AdvantageEstimator.Grpo,
        "rloo" => AdvantageEstimator.Rloo,
        "reinforce-pp" => AdvantageEstimator.ReinforcePp,
        "reinforce-pp-baseline" => AdvantageEstimator.ReinforcePpBaseline,
        "remax" => AdvantageEstimator.Remax,
        _ => throw new ArgumentOutOfRangeException(nameof(command), command, "not a group-RL command"),
    };

    public static Dictionary<string, double> Run(StageRecipe recipe, PretrainedSeq2SeqModel baseModel, string runDir, AdvantageEstimator estimator,
        StageState state, IProgress<TrainingProgress>? progress, Action<string>? warn, CancellationToken cancel)
    {
        var config = recipe.Grpo with { Estimator = estimator };
        string stage = config.StageName;
        var prompts = Seq2SeqPpoStage.Prompts(recipe, baseModel, warn);

        string sft = Path.Combine(runDir, "sft", "checkpoint");
        string start = Directory.Exists(sft) ? sft : baseModel.Path;
        using var policy = T5Lora.LoadMerged(start);
        config.CheckpointLayers(policy, stage);
        if (config.Lora is { } lora)
        {
            lora.Validate(stage);
            TorchSharp.torch.manual_seed((long)config.Seed);
            T5Lora.Attach(policy, lora);
        }
        // With LoRA the reference is the policy with its adapters off; else a second copy of the starting point.
        using var referenceModel = config.Lora is null ? T5Lora.LoadMerged(start, ModelDtype.Parse(config.ReferenceDtype, $"{stage}.reference_dtype")) : null;
        var reference = referenceModel is null ? new Seq2SeqActor(policy, adaptersOff: true) : new Seq2SeqActor(referenceModel);
        using var reward = new RolloutReward(recipe.Rewards, Path.Combine(runDir, "rm", "checkpoint"), policy.Config.VocabSize, baseModel.Tokenizer, scoreText: true);
        state = new StageState(state.Dir, config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(state.Dir, "metrics.jsonl"), state.SavedStep);
        var trainer = new GroupRlTrainer(new Seq2SeqActor(policy, new Seq2SeqSampler(policy, baseModel.Tokenizer)), reference, reward.Score, config)
        {
            Progress = progress, Metrics = metrics,
        };
        var result = trainer.Train(prompts, state, cancel);
        if (DataParallel.IsRoot && policy.Lora is not null) T5Lora.Save(policy, state.CheckpointDir, start, baseModel.WriteTokenizerFiles);
        else if (DataParallel.IsRoot) T5Checkpoint.Save(policy, state.CheckpointDir, writeExtras: baseModel.WriteTokenizerFiles);
        return result.Where(kv => kv.Key is "reward_mean" or "kl" or "zero_std_fraction" or "response_length").ToDictionary();
    }
}
