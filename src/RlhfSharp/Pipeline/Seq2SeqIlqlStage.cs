using RlhfSharp.Models.T5;

namespace RlhfSharp.Pipeline;

/// <summary>
/// <c>rlhf ilql</c> when the model is an encoder-decoder (T5), as trlX's <c>Seq2SeqILQL</c> trains it
/// (<c>model_arch_type: seq2seq</c>): scored completions from <c>ilql_data</c> (else <c>rm_data</c>; rankings scored by
/// rank as for decoder-only models), the prompt to the encoder and the completion to the decoder, each tokenised with
/// EOS as T5's tokenizer does (trlX's <c>tokenize_dialogue</c> ends the output with EOS too). The policy starts from the
/// run's SFT checkpoint (else the base model) and trains with new seeded <see cref="IlqlHeads"/> on the decoder's hidden
/// states (<see cref="Seq2SeqIlqlPolicy"/>, <see cref="IlqlTrainer"/>); the checkpoint is the T5 folder with the heads
/// beside it (<see cref="IlqlHeadsFile"/>), which <c>rlhf generate</c>/<c>serve</c>/<c>chat</c>/<c>eval</c> decode with.
/// </summary>
public static class Seq2SeqIlqlStage
{
    public static Dictionary<string, double> Run(StageRecipe recipe, PretrainedSeq2SeqModel baseModel, string runDir, StageState state,
        IProgress<TrainingProgress>? progress, Action<string>? warn, CancellationToken cancel)
    {
        var config = recipe.Ilql;
        config.Validate("ilql");
        if (config.Lora is not null) throw new RlhfException("ilql.lora: ILQL trains the whole model with its heads (trlX num_layers_unfrozen = -1); LoRA is not supported yet.");
        string path = RecipeData.Require(recipe.IlqlData ?? recipe.RmData, "ilql_data");
        var loaded = DatasetLoader.LoadScored(path, recipe.Fields, recipe.SkipInvalid);
        if (loaded.Skipped > 0) warn?.Invoke($"{path}: skipped {loaded.Skipped} invalid records");
        if (loaded.Records.Count == 0) throw new RlhfException($"{path}: no records.");
        var records = recipe.MaxRecords > 0 ? loaded.Records.Take(recipe.MaxRecords).ToList() : loaded.Records;
        var examples = records.Select(s => Example(baseModel, s, config)).ToList();
        var (train, eval) = RunStages.HoldOut(examples);

        string sft = Path.Combine(runDir, "sft", "checkpoint");
        string start = Directory.Exists(sft) ? sft : baseModel.Path;
        using var policy = T5Lora.LoadMerged(start);
        torch.manual_seed((long)config.Seed); // the new heads start the same on every run
        using var heads = new IlqlHeads(policy.Config.DModel, policy.Config.VocabSize, config.TwoQs, policy.shared.weight!.dtype);
        state = new StageState(state.Dir, config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(state.Dir, "metrics.jsonl"), state.SavedStep);
        int padId = baseModel.Tokenizer.PadId ?? policy.Config.PadTokenId;
        var trainer = new IlqlTrainer(new Seq2SeqIlqlPolicy(policy), heads, config, padId) { Progress = progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        if (DataParallel.IsRoot)
            T5Checkpoint.Save(policy, state.CheckpointDir, writeExtras: dir =>
            {
                baseModel.WriteTokenizerFiles(dir);
                IlqlHeadsFile.Save(heads, dir, config.Alpha, config.DecodeBeta);
            });
        return result.Where(kv => kv.Key is "loss" or "loss_q" or "loss_v" or "loss_awac" or "eval_loss").ToDictionary();
    }

    /// <summary>
    /// The encoder prompt keeps its last <see cref="IlqlConfig.MaxPromptLength"/> tokens and the completion its first
    /// max_length − prompt tokens, as <see cref="ScoredExample.Create"/> cuts a decoder-only example.
    /// </summary>
    static ScoredExample Example(PretrainedSeq2SeqModel model, ScoredCompletion scored, IlqlConfig config)
    {
        var prompt = model.EncodePrompt(scored.Prompt);
        if (prompt.Length > config.MaxPromptLength) prompt = prompt[^config.MaxPromptLength..];
        var completion = model.EncodePrompt(scored.Completion);
        int room = config.MaxLength - prompt.Length;
        if (completion.Length > room) completion = completion[..room];
        return new ScoredExample(prompt, completion, scored.Reward);
    }
}
