using RlhfSharp.Data;
using RlhfSharp.Models.T5;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// PPO-ptx on an encoder-decoder (T5) actor: (prompt → target) pairs, the prompt to the encoder and the loss on every
/// target token, the decoder reading the target shifted right behind the start token, exactly the loss
/// <see cref="Sft.Seq2SeqSftTrainer"/> trains (transformers' T5 with <c>labels</c>).
/// </summary>
public sealed class Seq2SeqPtxExamples(T5ForConditionalGeneration policy, IReadOnlyList<Seq2SeqExample> examples, int padId) : IPtxExamples
{
    public int Count => examples.Count;

    public int LossTokens(int index) => examples[index].TargetIds.Length;

    public Tensor LogLikelihood(IReadOnlyList<int> indices)
    {
        var chosen = indices.Select(i => examples[i]).ToList();
        return Seq2SeqLogprobs.Of(policy, chosen.Select(e => e.PromptIds).ToList(), chosen.Select(e => e.TargetIds).ToList(), padId).Logprobs.sum();
    }
}
