using RlhfSharp.Checkpoints;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Evaluation;

/// <summary>
/// Perplexity of outputs given their prompts under an encoder-decoder (T5): the prompt goes to the encoder and the
/// output's tokens (with EOS, as T5's tokenizer encodes a target) are scored by the decoder, as transformers' T5 loss
/// with <c>labels</c> does; the corpus perplexity is exp of the mean negative log-likelihood per target token, pooled
/// over all outputs as <see cref="Perplexity"/> pools them.
/// </summary>
public static class Seq2SeqPerplexity
{
    public static PerplexityResult Compute(PretrainedSeq2SeqModel model, IReadOnlyList<string> prompts, IReadOnlyList<string> outputs, int batchSize = 16)
    {
        var pairs = prompts.Zip(outputs, (p, o) => (Prompt: model.EncodePrompt(p), Target: model.EncodePrompt(o)))
            .Where(x => x.Prompt.Length > 0 && x.Target.Length > 0).ToList();
        int pad = model.Tokenizer.PadId ?? model.Model.Config.PadTokenId;
        double nll = 0;
        long tokens = 0;
        for (int start = 0; start < pairs.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var chunk = pairs.Skip(start).Take(batchSize).ToList();
            var (logprobs, mask) = Seq2SeqLogprobs.Of(model.Model, chunk.Select(c => c.Prompt).ToList(), chunk.Select(c => c.Target).ToList(), pad);
            nll -= logprobs.sum().to(ScalarType.Float64).item<double>();
            tokens += (long)mask.sum().item<float>();
        }
        double mean = tokens > 0 ? nll / tokens : double.NaN;
        return new PerplexityResult(Math.Exp(mean), mean, tokens);
    }
}
