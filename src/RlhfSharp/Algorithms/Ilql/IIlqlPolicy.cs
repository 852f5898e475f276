using RlhfSharp.Data;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ilql;

/// <summary>
/// The language model as <see cref="IlqlTrainer"/> sees it, so one trainer serves decoder-only and encoder-decoder
/// models (trlX's <c>AutoModelForCausalLMWithILQLHeads</c> and <c>AutoModelForSeq2SeqLMWithILQLHeads</c>): it lays out a
/// micro-batch of scored completions and gives the final hidden states the <see cref="Models.IlqlHeads"/> and the LM
/// head read. Everything else (the heads, the loss, the target sync, the step loop) is the trainer's.
/// </summary>
public interface IIlqlPolicy
{
    /// <summary>The trained module: its parameters, train/eval mode and saved state.</summary>
    nn.Module Module { get; }

    /// <summary>Width of the hidden states the heads read.</summary>
    int HiddenSize { get; }

    /// <summary>Vocabulary of the LM head (the Q heads' width).</summary>
    int VocabSize { get; }

    /// <summary>The micro-batch of <paramref name="examples"/> with their normalised <paramref name="rewards"/>, on the model's device.</summary>
    IlqlBatch Batch(IReadOnlyList<ScoredExample> examples, IReadOnlyList<double> rewards, int padId, ScalarType dtype);

    /// <summary>
    /// The final hidden states (B, T, H) over <see cref="IlqlBatch.InputIds"/>, after the final norm (HF
    /// <c>hidden_states[-1]</c>; an encoder-decoder's <c>decoder_hidden_states[-1]</c>), with gradients when enabled.
    /// </summary>
    Tensor Hidden(IlqlBatch batch);

    /// <summary>The language model's logits (…, vocab) of hidden states, without any ILQL shift.</summary>
    Tensor Head(Tensor hidden);
}
