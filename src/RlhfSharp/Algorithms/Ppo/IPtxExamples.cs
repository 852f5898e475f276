using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// PPO-ptx's pretraining examples as the actor's language-model loss reads them (InstructGPT eq. 2: γ·E[log π(x)] on the
/// pretraining mix; OpenRLHF <c>ptx_loss</c>). <see cref="PpoTrainer"/> draws the examples of each minibatch and divides
/// the summed log-likelihood by their loss tokens, so the term is the mean negative log-likelihood per token that SFT
/// trains: <see cref="CausalPtxExamples"/> on demonstrations for a decoder-only actor, <see cref="Seq2SeqPtxExamples"/>
/// on (prompt → target) pairs for an encoder-decoder one.
/// </summary>
public interface IPtxExamples
{
    int Count { get; }

    /// <summary>How many tokens of example <paramref name="index"/> carry the loss.</summary>
    int LossTokens(int index);

    /// <summary>Σ log π over the loss tokens of the examples at <paramref name="indices"/>: a scalar, with gradients when enabled.</summary>
    Tensor LogLikelihood(IReadOnlyList<int> indices);
}
