using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>Log-probability of whole completions given their prompts, the quantity DPO-style losses compare.</summary>
public static class SequenceLogprobs
{
    /// <summary>
    /// One forward over every (prompt, completion) of <paramref name="sequences"/>, right-padded: returns the summed
    /// log-probs of each completion's tokens, [N], and how many tokens each completion has, [N] (float, for
    /// length-averaging). Prompt and padding positions count for nothing (TRL <c>get_batch_logps</c> with
    /// labels = −100 on the prompt).
    /// </summary>
    /// <param name="chunkSize">Positions per chunk of the log-probs (<see cref="StageConfig.LogprobChunkSize"/>); 0 = the full logits.</param>
    public static (Tensor Sum, Tensor Count) Of(CausalLM model, IReadOnlyList<(int[] Prompt, int[] Completion)> sequences, int padId, int chunkSize = 0)
    {
        var device = model.model.Embeddings.weight!.device;
        var ids = sequences.Select(s => (int[])[.. s.Prompt, .. s.Completion]).ToList();
        var masks = sequences.Select(s => (bool[])[.. s.Prompt.Select(_ => false), .. s.Completion.Select(_ => true)]).ToList();
        var batch = TokenBatch.RightPad(ids, padId, device, masks);
        var logprobs = NextTokenDistributions.Of(model, batch.Ids, batch.AttentionMask, chunkSize: chunkSize).Logprobs(batch.Ids);
        // Position t of the log-probs predicts token t + 1, so the mask is shifted by one the same way.
        var mask = batch.LossMask.narrow(1, 1, batch.LossMask.shape[1] - 1);
        return ((logprobs * mask).sum(1), mask.sum(1));
    }
}
