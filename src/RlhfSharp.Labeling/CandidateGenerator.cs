using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;

namespace RlhfSharp.Labeling;

/// <summary>
/// Samples K candidate responses per prompt with the KV-cache <see cref="Sampler"/> for annotators to compare
/// (InstructGPT sampled K = 4..9 outputs per prompt from its models).
/// </summary>
public static class CandidateGenerator
{
    /// <summary>Prompts sampled together in one batch (K rows each).</summary>
    public const int PromptsPerBatch = 8;

    /// <summary>
    /// Up to <paramref name="k"/> distinct, non-blank responses per prompt (duplicates and blank samples are dropped,
    /// so a prompt can get fewer), in prompt order, each exactly the decoded sample (leading space included).
    /// </summary>
    public static IEnumerable<(string Prompt, IReadOnlyList<string> Responses)> Generate(PretrainedModel model, IReadOnlyList<string> prompts, int k,
        SamplingOptions options, CancellationToken cancel = default)
    {
        if (k < 1) throw new RlhfException($"--k must be ≥ 1, got {k}");
        var sampler = new Sampler(model.Model, model.Tokenizer);
        for (int start = 0; start < prompts.Count; start += PromptsPerBatch)
        {
            var chunk = prompts.Skip(start).Take(PromptsPerBatch).ToList();
            var ids = chunk.Select(model.EncodePrompt).ToList();
            using var batch = sampler.SampleGroups(ids, k, options with { Seed = options.Seed + (ulong)start }, cancel);
            for (int i = 0; i < chunk.Count; i++)
            {
                // Exactly as generated: a trimmed " Lily" joined to its prompt as "namedLily" when exported and trained on.
                var texts = Enumerable.Range(i * k, k)
                    .Select(row => model.Tokenizer.Decode(batch.NewTokens[row]))
                    .Where(t => t.Trim().Length > 0).Distinct().ToList();
                yield return (chunk[i], texts);
            }
        }
    }
}
