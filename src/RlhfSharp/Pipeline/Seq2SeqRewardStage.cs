using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Distributed;
using RlhfSharp.Rewards;
using RlhfSharp.Training;

namespace RlhfSharp.Pipeline;

/// <summary>
/// <c>rlhf rm</c> when the model is an encoder-decoder (T5): a <c>T5ForSequenceClassification</c> reward model (transformers
/// v4.44) started from the run's SFT checkpoint (else the base model) with a new head, trained by <see cref="RewardTrainer"/>
/// on the rankings of <c>rm_data</c>, centred on the SFT demonstrations, saved with HF's key set into
/// <c>&lt;run&gt;/rm/checkpoint</c>; with <c>rm.lora</c>, adapters on the body's q and v and the whole head, saved as a PEFT
/// SEQ_CLS folder on the starting checkpoint (<see cref="T5Lora.Attach(Models.T5.T5ForSequenceClassification, Lora.LoraConfig)"/>). Each response is read as T5's tokenizer reads the text prompt + response, with its EOS
/// (<see cref="RewardModelInput"/>), where the model pools.
/// </summary>
public static class Seq2SeqRewardStage
{
    public static Dictionary<string, double> Run(StageRecipe recipe, PretrainedSeq2SeqModel baseModel, string runDir, StageState state,
        IProgress<TrainingProgress>? progress, Action<string>? warn, CancellationToken cancel)
    {
        var config = recipe.Rm;
        string path = RecipeData.Require(recipe.RmData, "rm_data");
        var loaded = DatasetLoader.LoadRankings(path, recipe.Fields, recipe.SkipInvalid);
        if (loaded.Skipped > 0) warn?.Invoke($"{path}: skipped {loaded.Skipped} invalid records");
        if (loaded.Records.Count == 0) throw new RlhfException($"{path}: no records.");
        var rankings = recipe.MaxRecords > 0 ? loaded.Records.Take(recipe.MaxRecords).ToList() : loaded.Records;
        var tokenizer = baseModel.Tokenizer;
        int eos = tokenizer.EosId ?? throw new RlhfException($"{baseModel.Path}: the tokenizer has no EOS id: a T5 reward model reads the decoder at EOS.");
        int[] Sequence(string prompt, string completion) => RewardModelInput.EndWithEos(tokenizer.Encode(prompt + completion), eos, tokenizer.EosIds, config.MaxLength);
        var groups = rankings.Select(r => new RankedGroup(r.Responses.Select(resp => Sequence(r.Prompt, resp)).ToList(), r.Margin)).ToList();
        var (train, eval) = RunStages.HoldOut(groups);
        // InstructGPT centres the RM on SFT demonstrations; without SFT data the preferred responses stand in for them.
        List<int[]> centering;
        if (recipe.SftData is not null)
        {
            var demos = DatasetLoader.LoadDemonstrations(recipe.SftData, recipe.Fields, recipe.SkipInvalid).Records;
            centering = demos.Where(d => d.Messages is null).Select(d => Sequence(d.Prompt, d.Completion)).ToList();
        }
        else centering = train.Select(g => g.Sequences[0]).ToList();

        string sft = Path.Combine(runDir, "sft", "checkpoint");
        string start = Directory.Exists(sft) ? sft : baseModel.Path;
        TorchSharp.torch.manual_seed((long)config.Seed); // the new head starts the same on every run
        using var rm = T5Checkpoint.LoadSequenceClassification(start, allowNewHead: true);
        if (config.Lora is { } lora)
        {
            // PEFT's T5 targets (q, v) on the body; the new head trains whole and is saved beside the adapters.
            lora.Validate("rm");
            T5Lora.Attach(rm, lora);
        }
        config.CheckpointLayers(rm, "rm");
        state = new StageState(state.Dir, config.KeepLast);
        using var metrics = MetricsLog.Resuming(Path.Combine(state.Dir, "metrics.jsonl"), state.SavedStep);
        var trainer = new RewardTrainer(rm, config, tokenizer.PadId ?? rm.Config.PadTokenId) { Progress = progress, Metrics = metrics };
        var result = trainer.Train(train, eval, state, cancel);
        if (config.NormalizeOnDemonstrations) trainer.NormalizeOn(centering);
        result["reward_mean_offset"] = rm.RewardMean ?? 0;
        if (DataParallel.IsRoot && config.Lora is not null) T5Lora.Save(rm, state.CheckpointDir, start, baseModel.WriteTokenizerFiles);
        else if (DataParallel.IsRoot) T5Checkpoint.Save(rm, state.CheckpointDir, writeExtras: baseModel.WriteTokenizerFiles);
        return result;
    }
}
