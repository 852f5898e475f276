namespace RlhfSharp.Pipeline;

/// <summary>
/// <c>rlhf ppo</c> when the model is an encoder-decoder (T5), as RL4LMs' seq2seq PPO and TRL's
/// <c>AutoModelForSeq2SeqLMWithValueHead</c> run it: prompts from <c>ppo_prompts</c> go to the encoder (tokenised with EOS
/// as T5's tokenizer does), the decoder samples the response, and <see cref="PpoTrainer"/> trains it with the per-token KL
/// to the frozen starting point and GAE over the decoder steps (<see cref="Seq2SeqActor"/>). The critic is a value head on
/// the policy's decoder (<c>ppo.critic = value_head</c>) or RL4LMs' separate T5 value model (<c>separate_from_reward_model</c>,
/// <see cref="Seq2SeqCritic"/>); PPO-ptx mixes in the SFT loss on (prompt → target) pairs and <c>ppo.ema_beta</c> saves the
/// actor's EMA, as for decoder-only policies. It starts from the run's SFT checkpoint (else the base model). The rewards score the decoded text, so they are the
/// recipe's text sources (rules, http, prm) or a reward model reading the text with its own tokenizer (T5 or decoder-only).
/// <c>rlhf nlpo</c> is the same run with NLPO's masking policy on the decoder (<see cref="Seq2SeqMaskingPolicy"/>).
/// </summary>
public static class Seq2SeqPpoStage
{
    /// <summary>
    /// The encoder prompts of <c>ppo_prompts</c> for the online stages on T5 (PPO, NLPO, the GRPO family), at most
    /// <c>max_records</c>, each at most <c>max_prompt_tokens</c>.
    /// </summary>
    internal static List<int[]> Prompts(StageRecipe recipe, PretrainedSeq2SeqModel baseModel, Action<string>? warn)
    {
        string path = RecipeData.Require(recipe.PpoPrompts, "ppo_prompts");
        var loaded = DatasetLoader.LoadPrompts(path, recipe.Fields, recipe.SkipInvalid);
        if (loaded.Skipped > 0) warn?.Invoke($"{path}: skipped {loaded.Skipped} invalid records");
        if (loaded.Records.Count == 0) throw new RlhfException($"{path}: no records.");
        var records = recipe.MaxRecords > 0 ? loaded.Records.Take(recipe.MaxRecords).ToList() : loaded.Records;
        // T5's tokenizer truncates on the right and keeps its EOS (truncation_side "right").
        var prompts = records.Select(p => baseModel.EncodePrompt(p.Prompt) is var ids && ids.Length > recipe.MaxPromptTokens
            ? ids.Take(recipe.MaxPromptTokens - 1).Append(ids[^1]).ToArray() : ids).ToList();
        return prompts;
    }

    /// <param name="nlpo">NLPO's masking policy settings for <c>rlhf nlpo</c>; null for PPO.</param>
    public static Dictionary<string, double> Run(StageRecipe recipe, PretrainedSeq2SeqModel baseModel, string runDir, StageState state,
        IProgress<TrainingProgress>? progress, Action<string>? warn, CancellationToken cancel, NlpoConfig? nlpo = null)
    {
        var prompts = Prompts(recipe, baseModel, warn);

        var config = recipe.Ppo;
        string sft = Path.Combine(runDir, "sft", "checkpoint");
        string start = Directory.Exists(sft) ? sft : baseModel.Path;
        using var policy = T5Lora.LoadMerged(start);
        config.CheckpointLayers(policy, "ppo");
        if (config.Lora is { } lora)
        {
            lora.Validate("ppo");
            TorchSharp.torch.manual_seed((long)config.Seed);
            T5Lora.Attach(policy, lora);
        }
        // With LoRA the reference is the policy with its adapters off; else a second copy of the starting point.
        using var referenceModel = config.Lora is null ? T5Lora.LoadMerged(start) : null;
        var reference = referenceModel is null ? new Seq2SeqActor(policy, adaptersOff: true) : new Seq2SeqActor(referenceModel);
        // ppo.critic = separate_from_reward_model: RL4LMs' value model, a second T5 from the policy's own starting point (a decoder-only run's
        // critic starts from the reward model instead, which a T5 policy's rewards need not have), LoRA'd like the policy.
        if (config.SharedBase) throw new RlhfException("ppo.shared_base: sharing base weights is for decoder-only policies; an encoder-decoder (T5) policy takes it off.");
        using var critic = config.Critic == CriticKind.SeparateFromRewardModel ? Seq2SeqCritic.Load(start, (long)config.Seed + 1) : null;
        if (critic is not null)
        {
            if (config.Lora is { } criticLora) T5Lora.Attach(critic.transformer, criticLora); // seeded by Load; OpenRLHF puts LoRA on the critic too
            config.CheckpointLayers(critic, "ppo");
        }
        // PPO-ptx: the SFT loss on (prompt -> target) pairs of ptx_data, else sft_data, as the decoder-only stage mixes in.
        var ptxPath = recipe.PtxData ?? recipe.SftData;
        var sampler = new Seq2SeqSampler(policy, baseModel.Tokenizer);
        var ptx = ptxPath is null || config.PtxCoef == 0 ? null
            : new Seq2SeqPtxExamples(policy, Seq2SeqSftStage.Examples(RecipeData.Require(ptxPath, "ptx_data"), recipe, baseModel, warn)
                .Select(e => e.Truncate(recipe.Sft.MaxLength)).Where(e => e.PromptIds.Length > 0 && e.TargetIds.Length > 0).ToList(), sampler.PadId);
        using var reward = new RolloutReward(recipe.Rewards, Path.Combine(runDir, "rm", "checkpoint"), policy.Config.VocabSize, baseModel.Tokenizer, scoreText: true);
        state = new StageState(state.Dir, config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(state.Dir, "metrics.jsonl"), state.SavedStep);
        // RL4LMs never masks the tokenizer's all_special_ids (seq2seq_policy.py generate → logits processor), so an output can always end.
        using var masking = nlpo is null ? null : new Seq2SeqMaskingPolicy(policy, nlpo, [.. baseModel.Tokenizer.SpecialIds.Concat(sampler.EosIds).Append(sampler.PadId).Distinct()]);
        var trainer = new PpoTrainer(new Seq2SeqActor(policy, sampler), reference, critic, reward.Score, sampler.PadId, config)
        {
            Progress = progress, Metrics = metrics, Stage = nlpo is null ? "ppo" : "nlpo", ActionSpace = masking,
        };
        var result = trainer.Train(prompts, ptx, state, cancel);
        // With ppo.ema_beta the EMA of the actor is the checkpoint, as OpenRLHF saves it.
        var saved = (Models.T5.T5ForConditionalGeneration?)trainer.Ema ?? policy;
        if (DataParallel.IsRoot && saved.Lora is not null) T5Lora.Save(saved, state.CheckpointDir, start, baseModel.WriteTokenizerFiles);
        else if (DataParallel.IsRoot) T5Checkpoint.Save(saved, state.CheckpointDir, writeExtras: baseModel.WriteTokenizerFiles);
        return result.Where(kv => kv.Key is "reward_mean" or "kl" or "kl_coef" or "response_length").ToDictionary();
    }
}
