using RlhfSharp.Generation;
using static TorchSharp.torch;

namespace RlhfSharp.Rewards;

/// <summary>
/// The one sequence form a reward model is trained, centred and scored on: prompt + completion + EOS, the score read at
/// that EOS (the last real token). OpenRLHF's <c>datasets/reward_dataset.py</c> appends EOS to every chosen and rejected
/// text and, when truncation cuts it, writes EOS over the last kept token; TRL's <c>reward_trainer.py</c> appends it too
/// (<c>add_eos</c>). Training, centring on demonstrations and every scoring path (PPO and the online methods'
/// rollouts, the pipeline's evaluation and best-of-n, <c>rlhf eval --reward rm:</c>) go through here, so one prompt and
/// completion get one score.
/// </summary>
/// <remarks>
/// A rollout that stopped without EOS (the token budget ran out, or a stop string ended it) is scored as if it ended
/// there: EOS is appended after its last token. OpenRLHF does the same in spirit (<c>Actor.process_sequences</c> writes
/// EOS right after the last real token, over the last one when the row is full); here the sampled tokens stay as they
/// are and the EOS goes in one extra column. TRL instead scores such a completion at its last token and offers
/// <c>missing_eos_penalty</c> on top; a penalty can be had here with a rule reward term.
/// </remarks>
public static class RewardModelInput
{
    /// <summary>
    /// <paramref name="ids"/> ending in EOS: <paramref name="eosId"/> appended unless the last token already is one of
    /// <paramref name="eosIds"/>; longer than <paramref name="maxLength"/>, the head is kept and its last token becomes EOS.
    /// </summary>
    public static int[] EndWithEos(int[] ids, int eosId, IReadOnlyCollection<int> eosIds, int maxLength = int.MaxValue)
    {
        if (maxLength < 1) throw new RlhfException($"max length must be at least 1, got {maxLength}");
        if (ids.Length > 0 && eosIds.Contains(ids[^1]) && ids.Length <= maxLength) return ids;
        int[] result = ids.Length + 1 <= maxLength ? [.. ids, eosId] : ids[..maxLength];
        result[^1] = eosId;
        return result;
    }

    /// <summary>
    /// Rollouts as the reward model reads them, (B, P + N + 1) ids and attention mask: each row's prompt and new tokens,
    /// with EOS appended to every row whose last real token is not one (see the remarks).
    /// </summary>
    public static (Tensor Ids, Tensor Mask) OfRollouts(SampleBatch batch, int eosId, IReadOnlyCollection<int> eosIds)
    {
        long b = batch.Sequences.shape[0], t = batch.Sequences.shape[1];
        var ids = batch.Sequences.cpu().data<long>().ToArray();
        var mask = batch.AttentionMask.to(int64).cpu().data<long>().ToArray();
        long width = t + 1;
        var outIds = new long[b * width];
        var outMask = new long[b * width];
        for (long i = 0; i < b; i++)
        {
            long last = -1;
            for (long j = 0; j < t; j++)
            {
                outIds[i * width + j] = ids[i * t + j];
                outMask[i * width + j] = mask[i * t + j];
                if (mask[i * t + j] == 1) last = j;
            }
            if (last >= 0 && !eosIds.Contains((int)ids[i * t + last]))
            {
                outIds[i * width + last + 1] = eosId;
                outMask[i * width + last + 1] = 1;
            }
        }
        var device = batch.Sequences.device;
        return (tensor(outIds, [b, width], device: device), tensor(outMask, [b, width], device: device));
    }
}
