namespace RlhfSharp.Generation;

/// <summary>
/// One prompt's result: ids (prompt + new), the new ids, their text and per-token log-probs under the sampling
/// distribution (<see cref="SampleBatch.Logprobs"/> says exactly which).
/// </summary>
public sealed record Completion(int[] PromptIds, int[] NewIds, string Text, float[] Logprobs, FinishReason FinishReason)
{
    public int[] Ids => [.. PromptIds, .. NewIds];
}
