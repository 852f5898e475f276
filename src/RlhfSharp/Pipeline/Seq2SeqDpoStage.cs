namespace RlhfSharp.Pipeline;

/// <summary>
/// <c>rlhf dpo</c> / <c>rlhf ipo</c> / <c>simpo</c> / <c>orpo</c> / <c>kto</c> when the model is an encoder-decoder (T5): pairs
/// (KTO: labelled completions, pairs unpaired; <see cref="Seq2SeqKtoTrainer"/>) from <c>dpo_data</c> (else
/// <c>rm_data</c>), the prompt to the encoder and chosen/rejected to the decoder, each tokenised with EOS as T5's tokenizer
/// does (TRL <c>is_encoder_decoder</c>), trained by <see cref="Seq2SeqDpoTrainer"/> from the run's SFT checkpoint (else
/// the base model), which is also the frozen reference.
/// </summary>
public static class Seq2SeqDpoStage
{
    public static Dictionary<string, double> Run(StageRecipe recipe, PretrainedSeq2SeqModel baseModel, string runDir, PreferenceLossKind loss,
        StageState state, IProgress<TrainingProgress>? progress, Action<string>? warn, CancellationToken cancel)
    {
        string path = RecipeData.Require(recipe.DpoData ?? recipe.RmData, "dpo_data");
        List<Seq2SeqPreference> train = [], eval = [];
        List<LabeledExample> labeledTrain = [], labeledEval = [];
        if (loss == PreferenceLossKind.Kto)
        {
            // KTO's labelled completions (pairs are unpaired), held out per label so both splits keep both, as RecipeData.Labeled.
            var loaded = DatasetLoader.LoadLabeled(path, recipe.Fields, recipe.SkipInvalid);
            if (loaded.Skipped > 0) warn?.Invoke($"{path}: skipped {loaded.Skipped} invalid records");
            if (loaded.Records.Count == 0) throw new RlhfException($"{path}: no records.");
            var records = recipe.MaxRecords > 0 ? loaded.Records.Take(recipe.MaxRecords).ToList() : loaded.Records;
            var labeled = records.Select(l => new LabeledExample(baseModel.EncodePrompt(l.Prompt), baseModel.EncodePrompt(l.Completion), l.Label)).ToList();
            var (trainDesirable, evalDesirable) = RunStages.HoldOut(labeled.Where(l => l.Label).ToList());
            var (trainUndesirable, evalUndesirable) = RunStages.HoldOut(labeled.Where(l => !l.Label).ToList());
            (labeledTrain, labeledEval) = ([.. trainDesirable, .. trainUndesirable], [.. evalDesirable, .. evalUndesirable]);
        }
        else
        {
            var loaded = DatasetLoader.LoadPreferences(path, recipe.Fields, recipe.SkipInvalid);
            if (loaded.Skipped > 0) warn?.Invoke($"{path}: skipped {loaded.Skipped} invalid records");
            if (loaded.Records.Count == 0) throw new RlhfException($"{path}: no records.");
            var records = recipe.MaxRecords > 0 ? loaded.Records.Take(recipe.MaxRecords).ToList() : loaded.Records;
            var pairs = records.Select(p => new Seq2SeqPreference(baseModel.EncodePrompt(p.Prompt), baseModel.EncodePrompt(p.Chosen), baseModel.EncodePrompt(p.Rejected))).ToList();
            (train, eval) = RunStages.HoldOut(pairs);
        }
        string sft = Path.Combine(runDir, "sft", "checkpoint");
        string start = Directory.Exists(sft) ? sft : baseModel.Path;
        var config = recipe.Dpo with { Loss = loss };
        using var policy = T5Lora.LoadMerged(start);
        if (config.Lora is { } lora)
        {
            lora.Validate("dpo");
            TorchSharp.torch.manual_seed((long)config.Seed);
            T5Lora.Attach(policy, lora);
        }
        // With LoRA the reference is the policy with its adapters off; else a second copy of the starting point.
        using var reference = config.Lora is null && config.NeedsReference ? T5Lora.LoadMerged(start) : null;
        state = new StageState(state.Dir, config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(state.Dir, "metrics.jsonl"), state.SavedStep);
        int padId = baseModel.Tokenizer.PadId ?? policy.Config.PadTokenId;
        var result = loss == PreferenceLossKind.Kto
            ? new Seq2SeqKtoTrainer(policy, reference ?? policy, config, padId) { Progress = progress, Metrics = metrics }.Train(labeledTrain, labeledEval, state, cancel)
            : new Seq2SeqDpoTrainer(policy, reference ?? policy, config, padId) { Progress = progress, Metrics = metrics }.Train(train, eval, state, cancel);
        if (DataParallel.IsRoot && policy.Lora is not null) T5Lora.Save(policy, state.CheckpointDir, start, baseModel.WriteTokenizerFiles);
        else if (DataParallel.IsRoot) T5Checkpoint.Save(policy, state.CheckpointDir, writeExtras: baseModel.WriteTokenizerFiles);
        return result;
    }
}
