using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// One rollout batch with everything PPO needs, computed once without gradients: the tokens, the behaviour
/// policy's and the reference's log-probs of the response tokens, the critic's values, the scores, the
/// KL-shaped per-token rewards, and GAE advantages and returns. Response tensors are (B, N), aligned with the
/// N new tokens.
/// </summary>
public sealed class Experience : IDisposable
{
    public required Tensor Sequences { get; init; }
    public required Tensor AttentionMask { get; init; }
    public required Tensor Positions { get; init; }
    public required Tensor ActionMask { get; init; }
    public required Tensor OldLogprobs { get; init; }
    public required Tensor RefLogprobs { get; init; }
    public required Tensor Values { get; init; }
    public required Tensor Scores { get; init; }
    public required Tensor Kl { get; init; }
    public required Tensor Rewards { get; init; }
    public required Tensor Advantages { get; init; }
    public required Tensor Returns { get; init; }
    public required int PromptLength { get; init; }
    /// <summary>(B, N, V) bool: the tokens each response position could take under a restricted action space (NLPO); null: all.</summary>
    public Tensor? AllowedTokens { get; init; }
    public int Rows => (int)Sequences.shape[0];
    public int ResponseLength => (int)ActionMask.shape[1];

    public void Dispose()
    {
        foreach (var t in new[] { Sequences, AttentionMask, Positions, ActionMask, OldLogprobs, RefLogprobs, Values, Scores, Kl, Rewards, Advantages, Returns })
            t.Dispose();
        AllowedTokens?.Dispose();
    }
}
