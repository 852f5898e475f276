using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Nlpo;

/// <summary>
/// NLPO's action mask from the masking policy's next-token logits, as RL4LMs' <c>MaskLogitsProcessorCasualLM</c> builds
/// it for <c>mask_type = "learned_top_p"</c> (allenai/RL4LMs@97df0bd <c>rl4lms/algorithms/common/maskable/logits_processor.py</c>,
/// the nucleus rule of HF's <c>TopPLogitsWarper</c>).
/// </summary>
public static class TopPMask
{
    /// <summary>
    /// (…, V) logits → (…, V) bool, true for an allowed token. Tokens sorted by logit (descending); a token is removed when
    /// the cumulative probability of the tokens before it already exceeds <paramref name="topMask"/> (so the token that
    /// crosses it is kept, and the most likely token always is); the first <paramref name="minTokensToKeep"/> are never
    /// removed; <paramref name="alwaysAllowed"/> ids (RL4LMs: the tokenizer's special ids, so EOS can always end a story)
    /// are allowed whatever their probability.
    /// </summary>
    public static Tensor Allowed(Tensor logits, double topMask, int minTokensToKeep, IReadOnlyList<int> alwaysAllowed)
    {
        using var scope = NewDisposeScope();
        var (sorted, order) = logits.to(ScalarType.Float32).sort(-1, descending: true);
        var cumulative = sorted.softmax(-1).cumsum(-1);
        // Shifted right by one: removal starts after the token whose cumulative probability first passes top_mask.
        var exceeded = cumulative.gt(topMask);
        var last = exceeded.shape[^1];
        var removeSorted = torch.cat([torch.zeros_like(exceeded.narrow(-1, 0, 1)), exceeded.narrow(-1, 0, last - 1)], -1);
        if (minTokensToKeep > 1)
        {
            var rank = torch.arange(last, device: logits.device);
            removeSorted = removeSorted.logical_and(rank.ge(Math.Min(minTokensToKeep, last)));
        }
        var remove = torch.zeros_like(removeSorted).scatter(-1, order, removeSorted);
        var allowed = remove.logical_not();
        if (alwaysAllowed.Count > 0)
        {
            var ids = torch.tensor(alwaysAllowed.Select(i => (long)i).ToArray(), device: logits.device);
            allowed = allowed.index_fill(-1, ids, true);
        }
        return allowed.MoveToOuterDisposeScope();
    }
}

/// <summary>NLPO's action-space rule: <see cref="TopPMask.Allowed"/> with the run's <c>top_mask</c>, <c>min_tokens_to_keep</c> and the ids never masked.</summary>
public sealed record TopPRule(double TopMask, int MinTokensToKeep, IReadOnlyList<int> AlwaysAllowed)
{
    public TopPRule(NlpoConfig config, IReadOnlyList<int> alwaysAllowed) : this(config.TopMask, config.MinTokensToKeep, alwaysAllowed) { }

    /// <summary>(…, V) logits → (…, V) bool, true for an allowed token.</summary>
    public Tensor Allowed(Tensor logits) => TopPMask.Allowed(logits, TopMask, MinTokensToKeep, AlwaysAllowed);
}
