using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// One change to the next-token scores, as transformers' <c>LogitsProcessor</c> (<c>generation/logits_process.py</c>):
/// the sampler runs a <see cref="LogitsProcessorList"/> of them on the model's float32 logits (B, V) at every step.
/// </summary>
public interface ILogitsProcessor
{
    /// <summary>The scores after this processor; never changes <paramref name="scores"/> in place.</summary>
    Tensor Process(Tensor scores, DecodingState state);
}
