using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// One forward pass of an <see cref="IPpoActor"/>: the next-token distributions <see cref="Next"/> over the token
/// sequence <see cref="Tokens"/> (B, L), where position <see cref="Start"/> + j predicts response token j (which is
/// <see cref="Tokens"/>[:, Start + j + 1]), and the last hidden states (B, L, H) at the same positions. A decoder-only
/// model's sequence is prompt + response (Start = P − 1); an encoder-decoder's is the decoder's: start token + response
/// (Start = 0).
/// </summary>
public sealed record ActorForward(NextTokenDistributions Next, Tensor Tokens, int Start, Tensor? Hidden)
{
    /// <summary>The full logits (B, L, V); they exist only when the log-probs are not chunked.</summary>
    public Tensor Logits => Next.Logits ?? throw new InvalidOperationException("the actor's log-probs are chunked (logprob_chunk_size > 0): no full logits exist");

    /// <summary>log π(response token j) for j &lt; <paramref name="n"/>, (B, n), at <paramref name="temperature"/>.</summary>
    /// <param name="keepEntropy">Chunked: compute <see cref="Entropy"/>'s values in the same pass.</param>
    public Tensor Logprobs(int n, double temperature, bool keepEntropy = false) => Next.Logprobs(Tokens, temperature, Start, n, keepEntropy);

    /// <summary>The entropy of each response position's distribution, (B, n), at <paramref name="temperature"/>.</summary>
    public Tensor Entropy(int n, double temperature) => Next.Entropy(temperature, Start, n);
}
