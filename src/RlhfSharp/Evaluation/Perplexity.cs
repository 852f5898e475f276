using RlhfSharp.Models;
using RlhfSharp.Tokenization;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Evaluation;

/// <summary>
/// Perplexity of texts under a causal LM: each text is encoded (with BOS when the tokenizer has one, so the first
/// word is predicted too), every token after the first is scored, and the corpus perplexity is exp of the mean
/// negative log-likelihood per token, pooled over all texts (longer texts weigh more, as in RL4LMs).
/// </summary>
public static class Perplexity
{
    /// <summary>Scores <paramref name="texts"/> in right-padded batches of <paramref name="batchSize"/>.</summary>
    public static PerplexityResult Compute(CausalLM model, ITokenizer tokenizer, IReadOnlyList<string> texts, int batchSize = 16)
    {
        var encoded = texts.Select(t => tokenizer.Encode(t, addBos: tokenizer.BosId is not null))
            .Select(ids => ids.Length > model.Config.MaxPositions ? ids[..model.Config.MaxPositions] : ids)
            .Where(ids => ids.Length >= 2).ToList();
        double nll = 0;
        long tokens = 0;
        var device = model.model.Embeddings.weight!.device;
        for (int start = 0; start < encoded.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var chunk = encoded.Skip(start).Take(batchSize).ToList();
            int width = chunk.Max(c => c.Length);
            var ids = new long[chunk.Count * width];
            var mask = new long[chunk.Count * width];
            for (int i = 0; i < chunk.Count; i++)
                for (int j = 0; j < chunk[i].Length; j++) { ids[i * width + j] = chunk[i][j]; mask[i * width + j] = 1; }
            // Right padding: causal attention keeps real tokens from seeing the pads after them.
            var idT = tensor(ids, [chunk.Count, width], device: device);
            var maskT = tensor(mask, [chunk.Count, width], device: device);
            var lp = TokenLogprobs.Of(model.Forward(idT, maskT, Transformer.PositionsFromMask(maskT)), idT);
            var m = maskT.narrow(1, 1, width - 1).to(ScalarType.Float32);
            nll -= (lp * m).sum().to(ScalarType.Float64).item<double>();
            tokens += chunk.Sum(c => c.Length - 1);
        }
        double mean = tokens == 0 ? double.NaN : nll / tokens;
        return new PerplexityResult(Math.Exp(mean), mean, tokens);
    }
}
