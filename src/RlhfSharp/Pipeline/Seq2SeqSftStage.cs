namespace RlhfSharp.Pipeline;

/// <summary>
/// The SFT stage of <c>rlhf sft</c> when the model is an encoder-decoder (T5): each demonstration's prompt is the encoder
/// input and its completion the target, both tokenised as T5's tokenizer does (with EOS), trained by
/// <see cref="Seq2SeqSftTrainer"/> into <c>&lt;run&gt;/sft/checkpoint</c> with the tokenizer files.
/// </summary>
public static class Seq2SeqSftStage
{
    public static Dictionary<string, double> Run(StageRecipe recipe, PretrainedSeq2SeqModel model, StageState state,
        IProgress<TrainingProgress>? progress, Action<string>? warn, CancellationToken cancel)
    {
        var (train, eval) = RunStages.HoldOut(Examples(RecipeData.Require(recipe.SftData, "sft_data"), recipe, model, warn));
        if (recipe.Sft.Lora is { } lora)
        {
            lora.Validate("sft");
            TorchSharp.torch.manual_seed((long)recipe.Sft.Seed); // a rerun starts from the same A
            T5Lora.Attach(model.Model, lora);
        }
        state = new StageState(state.Dir, recipe.Sft.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(state.Dir, "metrics.jsonl"), state.SavedStep);
        var trainer = new Seq2SeqSftTrainer(model.Model, recipe.Sft, model.Tokenizer.PadId ?? model.Model.Config.PadTokenId) { Progress = progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        // With LoRA the checkpoint is the PEFT adapter folder on the base model, which later stages load merged.
        if (DataParallel.IsRoot && model.Model.Lora is not null) T5Lora.Save(model.Model, state.CheckpointDir, model.Path, model.WriteTokenizerFiles);
        else if (DataParallel.IsRoot) T5Checkpoint.Save(model.Model, state.CheckpointDir, writeExtras: model.WriteTokenizerFiles);
        return result;
    }

    /// <summary>
    /// The (prompt → completion) pairs of a demonstrations file, tokenised as T5's tokenizer does (with EOS), at most
    /// <c>max_records</c>: SFT's data, and PPO-ptx's on a T5 policy.
    /// </summary>
    internal static List<Seq2SeqExample> Examples(string path, StageRecipe recipe, PretrainedSeq2SeqModel model, Action<string>? warn)
    {
        var loaded = DatasetLoader.LoadDemonstrations(path, recipe.Fields, recipe.SkipInvalid);
        if (loaded.Skipped > 0) warn?.Invoke($"{path}: skipped {loaded.Skipped} invalid records");
        if (loaded.Records.Count == 0) throw new RlhfException($"{path}: no records.");
        var demos = recipe.MaxRecords > 0 ? loaded.Records.Take(recipe.MaxRecords).ToList() : loaded.Records;
        return demos.Select((d, i) => d.Messages is null
            ? new Seq2SeqExample(model.EncodePrompt(d.Prompt), model.EncodePrompt(d.Completion))
            : throw new RlhfException($"{path}: record {i + 1} is a chat (messages); encoder-decoder SFT takes prompt/completion records.")).ToList();
    }
}
