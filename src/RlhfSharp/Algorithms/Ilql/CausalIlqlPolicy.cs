using RlhfSharp.Data;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ilql;

/// <summary>A decoder-only policy for <see cref="IlqlTrainer"/>: one forward over prompt + completion (trlX <c>ILQLBatch</c>).</summary>
public sealed class CausalIlqlPolicy(CausalLM model) : IIlqlPolicy
{
    public nn.Module Module => model;
    public int HiddenSize => model.model.OutputSize;
    public int VocabSize => model.Config.VocabSize;

    public IlqlBatch Batch(IReadOnlyList<ScoredExample> examples, IReadOnlyList<double> rewards, int padId, ScalarType dtype) =>
        IlqlBatch.Create(examples, rewards, padId, model.model.Embeddings.weight!.device, dtype);

    public Tensor Hidden(IlqlBatch batch)
    {
        var hidden = new List<Tensor>();
        // The body only: the head is applied to the action positions alone, so no (B, T, V) logits are made.
        model.Hidden(batch.InputIds, batch.AttentionMask, Transformer.PositionsFromMask(batch.AttentionMask), hiddenStates: hidden);
        return hidden[^1];
    }

    public Tensor Head(Tensor hidden) => model.Head(hidden);
}
