using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// One forward pass of an <see cref="IPpoActor"/>: <see cref="Logits"/> (B, L, V) over the token sequence
/// <see cref="Tokens"/> (B, L), where position <see cref="Start"/> + j predicts response token j (which is
/// <see cref="Tokens"/>[:, Start + j + 1]), and the last hidden states (B, L, H) at the same positions. A decoder-only
/// model's sequence is prompt + response (Start = P − 1); an encoder-decoder's is the decoder's: start token + response
/// (Start = 0).
/// </summary>
public sealed record ActorForward(Tensor Logits, Tensor Tokens, int Start, Tensor? Hidden);
