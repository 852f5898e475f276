using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// A decoder-only critic (OpenRLHF's <c>CriticModel</c>): a <see cref="ScoreModel"/> whose head reads every position of
/// prompt + response; the value of choosing response token j is at position P − 1 + j, the one that predicts it.
/// </summary>
public sealed class CausalCritic(ScoreModel model) : IPpoCritic
{
    public ScoreModel Model => model;
    public nn.Module Module => model;

    public Tensor Values(Tensor sequences, Tensor attentionMask, Tensor positions, int promptLength, int n) =>
        model.TokenScores(sequences, attentionMask, positions).select(2, 0).narrow(1, promptLength - 1, n);
}
