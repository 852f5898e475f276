using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// OpenAI's frequency penalty (vLLM <c>apply_penalties</c>): <c>logits[t] −= count[t]·penalty</c> over the tokens the row
/// has generated (<see cref="DecodingState.Counts"/>; prompt tokens do not count).
/// </summary>
public sealed class FrequencyPenaltyProcessor(double penalty) : ILogitsProcessor
{
    public Tensor Process(Tensor scores, DecodingState state) => scores - state.Counts! * penalty;
}
