using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>Why a row stopped: EOS or a stop string ("stop"), or the token budget ("length"), as OpenAI names it.</summary>
public enum FinishReason { Stop, Length }

/// <summary>
/// What a batch of rollouts produced, as tensors on the model's device, ready for PPO:
/// <see cref="Sequences"/> = left-padded prompts followed by the new tokens (pad after a row finished).
/// </summary>
public sealed class SampleBatch : IDisposable
{
    /// <summary>(B, P + N): prompt and new tokens.</summary>
    public required Tensor Sequences { get; init; }
    /// <summary>(B, P + N): 1 for prompt tokens and for new tokens up to and including the row's last one.</summary>
    public required Tensor AttentionMask { get; init; }
    /// <summary>(B, N): 1 where a new token was generated (EOS included), 0 after the row finished.</summary>
    public required Tensor ResponseMask { get; init; }
    /// <summary>
    /// (B, N): log-probability of each new token under the distribution it was drawn from, 0 after the row finished:
    /// the model's logits with the repetition, presence and frequency penalties and <c>min_new_tokens</c> applied, divided
    /// by the temperature, then restricted by top-k and top-p and renormalised over the tokens they keep (what HF's
    /// logits processors and warpers hand to <c>multinomial</c>). Greedy rows: the penalised logits' log-softmax, no
    /// temperature. Compare with <see cref="ModelLogprobs"/>, not this, when asking what the model itself thinks.
    /// </summary>
    public required Tensor Logprobs { get; init; }
    /// <summary>(B, N): log-softmax of the model's raw logits at each new token (no penalty, temperature or truncation), 0 after the row finished.</summary>
    public required Tensor ModelLogprobs { get; init; }
    public required int PromptLength { get; init; }
    public required int[][] NewTokens { get; init; }
    public required FinishReason[] FinishReasons { get; init; }

    public void Dispose()
    {
        Sequences.Dispose(); AttentionMask.Dispose(); ResponseMask.Dispose(); Logprobs.Dispose(); ModelLogprobs.Dispose();
    }
}
