using RlhfSharp.Models;
using RlhfSharp.Tokenization;
using static TorchSharp.torch;

namespace RlhfSharp.Rewards;

/// <summary>Where <see cref="FluencyScorer"/> puts the padding of a batch; both give the same scores.</summary>
public enum PaddingSide { Right, Left }

/// <summary>
/// How well a completion reads under a frozen causal LM: the mean log-probability per completion token given the
/// prompt, <c>(1/m) Σₜ log p(yₜ | prompt, y&lt;t)</c>. Higher (closer to 0) is more fluent. Batched, padded on
/// <see cref="Padding"/>, run under <c>no_grad</c> with one dispose scope per batch; the model is only read.
/// </summary>
/// <remarks>
/// Text is tokenised as the sampler would see it: <c>prompt + completion</c> is encoded as one string (BOS first when
/// <see cref="AddBos"/>), and the completion's tokens are those after the encoded prompt. If the two encodings
/// disagree at the seam (a merge across it), the tokens after their longest common prefix are scored. Use
/// <see cref="ScoreIds"/> when the token ids are at hand. A sequence longer than the model's positions is cut at the
/// end. An empty completion (no tokens to score) gets <see cref="double.NaN"/>; so does a completion whose only
/// token is the first of the sequence (nothing to condition on).
/// </remarks>
public sealed class FluencyScorer(CausalLM model, ITokenizer tokenizer) : IRewardFunction
{
    public string Name => "fluency";

    /// <summary>Sequences per forward pass.</summary>
    public int BatchSize { get; init; } = 16;

    public PaddingSide Padding { get; init; } = PaddingSide.Right;

    /// <summary>Whether text is encoded with BOS first; default as <c>PretrainedModel.AddsBos</c> decides for non-HF tokenizers.</summary>
    public bool AddBos { get; init; } = tokenizer.BosId is not null && model.Config.Family == ModelFamily.Llama;

    /// <summary>The id that fills padded positions (its value never matters: the mask hides it).</summary>
    public int PadId { get; init; } = tokenizer.PadId ?? tokenizer.EosId ?? 0;

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        Check.SameCount(prompts, completions);
        var promptIds = new int[prompts.Count][];
        var completionIds = new int[prompts.Count][];
        for (int i = 0; i < prompts.Count; i++)
        {
            var p = tokenizer.Encode(prompts[i], AddBos);
            var full = tokenizer.Encode(prompts[i] + completions[i], AddBos);
            int seam = 0;
            while (seam < p.Length && seam < full.Length && p[seam] == full[seam]) seam++;
            promptIds[i] = full[..seam];
            completionIds[i] = completions[i].Length == 0 ? [] : full[seam..];
        }
        return ScoreIds(promptIds, completionIds);
    }

    /// <summary>Mean log-prob per completion token for token-id pairs (no BOS is added here).</summary>
    public double[] ScoreIds(IReadOnlyList<int[]> promptIds, IReadOnlyList<int[]> completionIds)
    {
        if (promptIds.Count != completionIds.Count)
            throw new RlhfException($"{promptIds.Count} prompts but {completionIds.Count} completions.");
        var scores = new double[promptIds.Count];
        for (int start = 0; start < scores.Length; start += BatchSize)
        {
            int b = Math.Min(BatchSize, scores.Length - start);
            ScoreBatch(promptIds, completionIds, start, b).CopyTo(scores, start);
        }
        return scores;
    }

    double[] ScoreBatch(IReadOnlyList<int[]> promptIds, IReadOnlyList<int[]> completionIds, int start, int b)
    {
        int maxPositions = model.Config.MaxPositions;
        var seqs = new int[b][];
        var promptLengths = new int[b];
        for (int i = 0; i < b; i++)
        {
            int[] all = [.. promptIds[start + i], .. completionIds[start + i]];
            seqs[i] = all.Length > maxPositions ? all[..maxPositions] : all;
            promptLengths[i] = promptIds[start + i].Length;
        }
        int t = Math.Max(1, seqs.Max(s => s.Length));
        var ids = new long[b * t];
        var mask = new long[b * t];
        // scored[i, j] = 1 when position j predicts a completion token (the token at j + 1), as in the gather below.
        var scored = new float[b * (t - 1)];
        var counts = new int[b];
        for (int i = 0; i < b; i++)
        {
            int offset = Padding == PaddingSide.Left ? t - seqs[i].Length : 0;
            for (int j = 0; j < t; j++) ids[i * t + j] = PadId;
            for (int j = 0; j < seqs[i].Length; j++)
            {
                int v = seqs[i][j];
                if (v < 0 || v >= model.Config.VocabSize)
                    throw new RlhfException($"sequence {start + i}: token id {v} is outside the model's vocabulary (0..{model.Config.VocabSize - 1}).");
                ids[i * t + offset + j] = v;
                mask[i * t + offset + j] = 1;
                if (j >= 1 && j >= promptLengths[i]) { scored[i * (t - 1) + offset + j - 1] = 1; counts[i]++; }
            }
        }
        if (t == 1) return counts.Select(_ => double.NaN).ToArray();

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var device = model.model.Embeddings.weight!.device;
        var idsT = tensor(ids, [b, t], device: device);
        var maskT = tensor(mask, [b, t], device: device);
        var logits = model.Forward(idsT, maskT, Transformer.PositionsFromMask(maskT));              // (B, T, V)
        var logprobs = logits.narrow(1, 0, t - 1).to(float32).log_softmax(-1)
            .gather(2, idsT.narrow(1, 1, t - 1).unsqueeze(-1)).squeeze(-1);                          // (B, T-1)
        var sums = (logprobs * tensor(scored, [b, t - 1], device: device)).sum(1).to(float64).cpu().data<double>().ToArray();
        return sums.Select((s, i) => counts[i] == 0 ? double.NaN : s / counts[i]).ToArray();
    }
}
