using RlhfSharp.Models.T5;

namespace RlhfSharp.Algorithms.Sft;

/// <summary>
/// Supervised fine-tuning of an encoder-decoder (T5): the prompt is the encoder's input and the cross-entropy is on
/// the target tokens only, the decoder reading them shifted right behind the start token (transformers v4.44
/// T5ForConditionalGeneration with <c>labels</c>; TRL's SFT of encoder-decoder models). As in <see cref="SftTrainer"/>,
/// the loss is averaged over every target token of an optimizer step, so accumulation equals one large batch. With LoRA
/// attached (<see cref="Lora.T5Lora.Attach"/>) only the adapters require gradients, so only they are trained.
/// </summary>
public sealed class Seq2SeqSftTrainer(T5ForConditionalGeneration model, SftConfig config, int padId) : StageTrainer
{
    public Dictionary<string, double> Train(IReadOnlyList<Seq2SeqExample> train, IReadOnlyList<Seq2SeqExample> eval, StageState? state = null, CancellationToken cancel = default)
    {
        if (train.Count == 0) throw new RlhfException("SFT: no training examples.");
        if (config.Packing) throw new RlhfException("SFT packing is for decoder-only models; an encoder-decoder trains on (prompt, target) pairs.");
        config.RefuseLogprobChunks("sft", "an encoder-decoder (T5) model's head is read whole");
        config.CheckpointLayers(model, "sft");
        var examples = train.Select(e => e.Truncate(config.MaxLength)).Where(e => e.TargetIds.Length > 0 && e.PromptIds.Length > 0).ToList();
        if (examples.Count == 0) throw new RlhfException("SFT: no example has both a prompt and a target.");
        using var loop = new EpochLoop("sft", config, config.Optimizer, examples.Count, model.parameters(), new Dictionary<string, nn.Module> { ["policy"] = model })
        {
            State = state, Metrics = Metrics, Progress = Progress, Evaluate = eval.Count > 0 ? () => Evaluate(eval) : null,
        };
        config.SwitchDropout(model);
        model.train();
        loop.Run((step, row) => SftTrainer.Step(loop, examples, step, row, config.BatchSize, e => e.TargetIds.Length, e => e.PromptIds.Length + e.TargetIds.Length,
            micro => (-TargetLogprobs(micro).sum(), null)), cancel);
        model.eval();
        return eval.Count > 0 ? Evaluate(eval) : new Dictionary<string, double>();
    }

    /// <summary>Log-probabilities of every target token (B, Tt), 0 at padding: encoder over the prompts, decoder over the
    /// targets shifted right.</summary>
    public Tensor TargetLogprobs(IReadOnlyList<Seq2SeqExample> batch) =>
        Seq2SeqLogprobs.Of(model, batch.Select(e => e.PromptIds).ToList(), batch.Select(e => e.TargetIds).ToList(), padId).Logprobs;

    /// <summary>Mean negative log-likelihood per target token and its perplexity (each rank scores its shard).</summary>
    public Dictionary<string, double> Evaluate(IReadOnlyList<Seq2SeqExample> eval)
    {
        eval = DataParallel.Shard(eval);
        bool wasTraining = model.training;
        model.eval();
        double nll = 0, count = 0;
        using (no_grad())
        {
            for (int i = 0; i < eval.Count; i += config.BatchSize)
            {
                using var scope = NewDisposeScope();
                var micro = eval.Skip(i).Take(config.BatchSize).Select(e => e.Truncate(config.MaxLength)).ToList();
                nll -= TargetLogprobs(micro).sum().item<float>();
                count += micro.Sum(e => e.TargetIds.Length);
            }
        }
        if (wasTraining) model.train();
        var summed = DataParallel.Sum(nll, count);
        double mean = summed[0] / Math.Max(1, summed[1]);
        return new Dictionary<string, double> { ["eval_loss"] = mean, ["eval_perplexity"] = Math.Exp(mean) };
    }
}
