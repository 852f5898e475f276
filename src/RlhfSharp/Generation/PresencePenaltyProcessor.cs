using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// OpenAI's presence penalty (vLLM <c>apply_penalties</c>): <c>logits[t] −= (count[t] &gt; 0)·penalty</c>, once for every
/// token the row has generated (<see cref="DecodingState.Counts"/>; prompt tokens do not count).
/// </summary>
public sealed class PresencePenaltyProcessor(double penalty) : ILogitsProcessor
{
    public Tensor Process(Tensor scores, DecodingState state) => scores - state.Counts!.gt(0).to(ScalarType.Float32) * penalty;
}
