using RlhfSharp.Data;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// PPO-ptx on a decoder-only actor: demonstrations (or plain text) right-padded, each token predicted by the position
/// before it, the loss on the tokens of each example's loss mask (<see cref="SftTrainer"/>'s form).
/// </summary>
/// <param name="logprobChunkSize">Positions per chunk of the log-probs (<see cref="StageConfig.LogprobChunkSize"/>); 0 = the full logits.</param>
public sealed class CausalPtxExamples(CausalLM policy, IReadOnlyList<SftExample> examples, int padId, int logprobChunkSize = 0) : IPtxExamples
{
    public int Count => examples.Count;

    // The first token is never predicted.
    public int LossTokens(int index) => examples[index].LossMask.Skip(1).Count(m => m);

    public Tensor LogLikelihood(IReadOnlyList<int> indices)
    {
        var chosen = indices.Select(i => examples[i]).ToList();
        var b = TokenBatch.RightPad(chosen.Select(e => e.InputIds).ToList(), padId, policy.model.Embeddings.weight!.device, chosen.Select(e => e.LossMask).ToList());
        var lm = b.LossMask.narrow(1, 1, b.LossMask.shape[1] - 1);
        return NextTokenDistributions.Of(policy, b.Ids, b.AttentionMask, chunkSize: logprobChunkSize).WeightedLogprobSum(b.Ids, lm);
    }
}
