using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// The next-token distributions of one causal-LM forward over ids (B, T), in the form the training losses read them:
/// the full logits (B, T, V), or — with a chunk size (the stages' <see cref="StageConfig.LogprobChunkSize"/>) — the final
/// hidden states (B, T, H) and the LM head, which <see cref="ChunkedLogprobs"/> turns into log-probs and entropies a chunk
/// of positions at a time, so the (B, T, V) logits never exist. Position t predicts token t + 1, as in
/// <see cref="TokenLogprobs.Of(Tensor, Tensor, double)"/>.
/// </summary>
public sealed class NextTokenDistributions
{
    readonly LmHeadWeights? head;
    readonly int chunkSize;
    (Tensor Entropy, double Temperature, long Start, long Count)? kept;

    NextTokenDistributions(Tensor? logits, Tensor? hidden, LmHeadWeights? head, int chunkSize)
    {
        Logits = logits; Hidden = hidden; this.head = head; this.chunkSize = chunkSize;
    }

    /// <summary>The full logits (B, T, V); null when chunked.</summary>
    public Tensor? Logits { get; }

    /// <summary>The final hidden states (B, T, H) the head reads; null unless chunked.</summary>
    public Tensor? Hidden { get; }

    /// <summary>Distributions held as the logits already computed (an encoder-decoder's head, a caller's own forward).</summary>
    public static NextTokenDistributions FromLogits(Tensor logits) => new(logits, null, null, 0);

    /// <summary>
    /// <paramref name="model"/>'s forward over <paramref name="ids"/>: its logits when <paramref name="chunkSize"/> is 0 (the
    /// same call as before chunking existed, so seeded runs are bit-identical), else its final hidden states. A model with
    /// ILQL heads (<see cref="CausalLM.Ilql"/>) shifts the logits by the heads' values, so it is always read whole.
    /// </summary>
    public static NextTokenDistributions Of(CausalLM model, Tensor ids, Tensor? attentionMask = null, Tensor? positionIds = null,
        int chunkSize = 0, List<Tensor>? hiddenStates = null)
    {
        if (chunkSize <= 0 || model.Ilql is not null) return new(model.Forward(ids, attentionMask, positionIds, hiddenStates: hiddenStates), null, null, 0);
        return new(null, model.Hidden(ids, attentionMask, positionIds, hiddenStates: hiddenStates), model.HeadWeights, chunkSize);
    }

    /// <summary>
    /// log p(ids[t+1] | ids[..t]) at <paramref name="temperature"/> for the <paramref name="count"/> positions from
    /// <paramref name="start"/>: (B, count); by default every position, (B, T−1). Chunked, only those positions' logits are
    /// ever computed.
    /// </summary>
    /// <param name="keepEntropy">Chunked: compute the positions' entropies in the same pass, for <see cref="Entropy"/>.</param>
    public Tensor Logprobs(Tensor ids, double temperature = 1.0, long start = 0, long count = -1, bool keepEntropy = false)
    {
        if (Logits is not null)
        {
            var all = TokenLogprobs.Of(Logits, ids, temperature);
            return count < 0 ? all : all.narrow(1, start, count);
        }
        if (count < 0) count = ids.shape[1] - 1 - start;
        var (logprobs, entropy) = ChunkedLogprobs.Of(Hidden!.narrow(1, start, count), ids.narrow(1, start + 1, count), head!, temperature, chunkSize, keepEntropy);
        if (entropy is not null) kept = (entropy, temperature, start, count);
        return logprobs;
    }

    /// <summary>
    /// Σ <paramref name="weights"/> · log p(ids[t+1] | ids[..t]) over every position, weights (B, T−1): a loss linear in the
    /// log-probs, such as SFT's summed log-likelihood of its target tokens. Full logits: exactly
    /// <c>(Logprobs(ids) * weights).sum()</c>. Chunked: <see cref="ChunkedLogprobs.WeightedSum"/>, which forms the
    /// gradients in the forward instead of recomputing each chunk's logits in the backward.
    /// </summary>
    public Tensor WeightedLogprobSum(Tensor ids, Tensor weights)
    {
        if (Logits is not null) return (Logprobs(ids) * weights).sum();
        long count = ids.shape[1] - 1;
        return ChunkedLogprobs.WeightedSum(Hidden!.narrow(1, 0, count), ids.narrow(1, 1, count), weights, head!, 1.0, chunkSize);
    }

    /// <summary>Entropy of each position's distribution at <paramref name="temperature"/>, for the positions as <see cref="Logprobs"/>.</summary>
    public Tensor Entropy(double temperature = 1.0, long start = 0, long count = -1)
    {
        if (Logits is not null)
        {
            var all = TokenLogprobs.Entropy(Logits, temperature);
            return count < 0 ? all : all.narrow(1, start, count);
        }
        if (count < 0) count = Hidden!.shape[1] - 1 - start;
        if (kept is { } k && k.Temperature == temperature && k.Start == start && k.Count == count) return k.Entropy;
        // No log-probs asked for these positions: any targets do, only the entropies are kept.
        var targets = zeros(Hidden!.shape[0], count, dtype: ScalarType.Int64, device: Hidden.device);
        return ChunkedLogprobs.Of(Hidden.narrow(1, start, count), targets, head!, temperature, chunkSize, entropy: true).Entropy!;
    }
}
