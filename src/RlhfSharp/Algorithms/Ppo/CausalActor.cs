using RlhfSharp.Generation;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>A decoder-only policy for <see cref="PpoTrainer"/>: left-padded prompts, one forward over prompt + response.</summary>
/// <param name="logprobChunkSize">Positions per chunk of the log-probs (<see cref="Training.StageConfig.LogprobChunkSize"/>); 0 = the full logits.</param>
public sealed class CausalActor(CausalLM model, Sampler? sampler = null, int logprobChunkSize = 0) : IPpoActor
{
    public CausalLM Model => model;
    public nn.Module Module => model;
    public int HiddenSize => model.model.OutputSize;
    public (ScalarType Dtype, Device Device) Placement => (model.model.Embeddings.weight!.dtype, model.model.Embeddings.weight!.device);

    public SampleBatch Rollout(IReadOnlyList<int[]> prompts, SamplingOptions options, ITokenMask? tokenMask)
    {
        var s = sampler ?? throw new InvalidOperationException("this actor has no sampler (a reference model)");
        var (ids, mask) = s.LeftPad(prompts);
        return s.Sample(ids, mask, options, tokenMask: tokenMask);
    }

    public nn.Module CloneModule() => model.Clone();

    public ActorForward Forward(Tensor sequences, Tensor attentionMask, Tensor positions, int promptLength, bool withHidden)
    {
        var hidden = withHidden ? new List<Tensor>() : null;
        var next = NextTokenDistributions.Of(model, sequences, attentionMask, positions, logprobChunkSize, hidden);
        return new ActorForward(next, sequences, promptLength - 1, hidden?[^1]);
    }
}
