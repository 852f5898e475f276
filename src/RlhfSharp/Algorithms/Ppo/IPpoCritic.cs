using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// A critic that is its own model (<see cref="CriticKind.SeparateFromRewardModel"/>), as <see cref="PpoTrainer"/> sees it:
/// the value of each state that emits a response token, read from rollout rows (<see cref="Generation.SampleBatch.Sequences"/>'
/// layout). A decoder-only critic is a reward-model-shaped <see cref="CausalCritic"/>; an encoder-decoder one is RL4LMs'
/// value model, <see cref="Seq2SeqCritic"/>. The trainer owns its optimizer, its clipped value loss and its saved state.
/// </summary>
public interface IPpoCritic
{
    /// <summary>The trained module: its parameters, train/eval mode and saved state.</summary>
    nn.Module Module { get; }

    /// <summary>Values (B, <paramref name="n"/>): position j is the state in which response token j is chosen.</summary>
    Tensor Values(Tensor sequences, Tensor attentionMask, Tensor positions, int promptLength, int n);
}
