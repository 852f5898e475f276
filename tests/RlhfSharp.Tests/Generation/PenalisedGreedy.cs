using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Generation;

/// <summary>
/// The reference the penalty tests compare against, written from OpenAI's formula with no sampler code: a full
/// forward pass per step (no KV cache), logits[t] −= count[t]·frequency + (count[t] &gt; 0)·presence over the tokens
/// generated so far, on host arrays, then argmax.
/// </summary>
static class PenalisedGreedy
{
    public static int[] Tokens(CausalLM model, int[] prompt, int maxNew, double presence, double frequency, IReadOnlySet<int> eos)
    {
        var ids = prompt.ToList();
        var counts = new Dictionary<int, int>();
        var result = new List<int>();
        using var _ = no_grad();
        for (int s = 0; s < maxNew; s++)
        {
            float[] logits;
            using (NewDisposeScope())
                logits = model.Forward(tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Count]))[0, ids.Count - 1].to(float32).data<float>().ToArray();
            int best = -1;
            double bestScore = double.NegativeInfinity;
            for (int t = 0; t < logits.Length; t++)
            {
                int c = counts.GetValueOrDefault(t);
                double score = logits[t] - c * frequency - (c > 0 ? presence : 0);
                if (score > bestScore) { bestScore = score; best = t; }
            }
            if (eos.Contains(best)) break;
            result.Add(best);
            ids.Add(best);
            counts[best] = counts.GetValueOrDefault(best) + 1;
        }
        return [.. result];
    }

    /// <summary>log-softmax of the model's logits at each new token, teacher-forced over prompt + new tokens.</summary>
    public static float[] ModelLogprobs(CausalLM model, int[] prompt, int[] newIds)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        long[] all = [.. prompt.Select(x => (long)x), .. newIds.Select(x => (long)x)];
        var logprobs = model.Forward(tensor(all, [1, all.Length])).to(float32).log_softmax(-1)[0];
        return newIds.Select((id, t) => logprobs[prompt.Length - 1 + t, id].item<float>()).ToArray();
    }
}
