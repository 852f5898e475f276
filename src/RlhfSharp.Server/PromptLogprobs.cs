using RlhfSharp.Generation;
using static TorchSharp.torch;

namespace RlhfSharp.Server;

/// <summary>
/// The log-probabilities of a prompt's own tokens, for legacy completions' <c>echo</c> with <c>logprobs</c>: token t
/// is scored by the log-softmax of the logits at t − 1 (teacher forcing, one forward pass), with the k most likely
/// tokens at that position. The first token has nothing before it: OpenAI reports <c>null</c> there, and so do we
/// (its <see cref="TokenLogprob.Logprob"/> is NaN). Generated tokens are scored the same way (log-softmax of the raw
/// logits, <see cref="Generation.SampledToken.ModelLogprob"/>), so prompt and completion logprobs add up as one text's.
/// </summary>
public static class PromptLogprobs
{
    /// <summary>One entry per prompt token, in order; runs on the thread that owns the model (the batcher's).</summary>
    public static IReadOnlyList<TokenLogprob> Of(ITextGenerator model, int[] ids, int k)
    {
        float[] chosen;
        long[] topIds;
        float[] topLogprobs;
        using (no_grad())
        using (NewDisposeScope())
        {
            // (T, V): row t predicts token t + 1.
            var logits = model.PromptLogits(ids) ?? throw new RlhfException("echo with logprobs: this model does not score its prompt (an encoder-decoder reads it).");
            var logprobs = logits.to(ScalarType.Float32).log_softmax(-1);
            var predicting = logprobs.narrow(0, 0, ids.Length - 1);
            var targets = tensor(ids.Skip(1).Select(x => (long)x).ToArray()).unsqueeze(-1);
            chosen = predicting.gather(1, targets).squeeze(-1).data<float>().ToArray();
            int width = Math.Max(k, 1);
            var (values, indices) = predicting.topk(width, -1);
            topLogprobs = values.contiguous().data<float>().ToArray();
            topIds = indices.contiguous().data<long>().ToArray();
        }
        TokenLogprob Entry(int id, float logprob, IReadOnlyList<TokenLogprob> top) =>
            new(model.Tokenizer.Decode([id], skipSpecial: false), model.Tokenizer.TokenBytes(id), logprob, top);
        int w = Math.Max(k, 1);
        var result = new List<TokenLogprob>(ids.Length) { Entry(ids[0], float.NaN, []) };
        for (int t = 1; t < ids.Length; t++)
            result.Add(Entry(ids[t], chosen[t - 1], [.. Enumerable.Range(0, k).Select(j => Entry((int)topIds[(t - 1) * w + j], topLogprobs[(t - 1) * w + j], []))]));
        return result;
    }
}
