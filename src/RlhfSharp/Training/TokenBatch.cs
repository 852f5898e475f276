using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>Right-padded token sequences as tensors: ids, attention mask and (optionally) a loss mask.</summary>
public sealed record TokenBatch(Tensor Ids, Tensor AttentionMask, Tensor LossMask)
{
    /// <summary>
    /// Pads on the right with <paramref name="padId"/>. <paramref name="lossMasks"/> (1 where a token is a target)
    /// default to all real tokens.
    /// </summary>
    public static TokenBatch RightPad(IReadOnlyList<int[]> sequences, int padId, Device device, IReadOnlyList<bool[]>? lossMasks = null)
    {
        int b = sequences.Count, t = sequences.Max(s => s.Length);
        var ids = new long[b * t];
        var attention = new long[b * t];
        var loss = new float[b * t];
        for (int i = 0; i < b; i++)
        {
            var s = sequences[i];
            for (int j = 0; j < t; j++)
            {
                bool real = j < s.Length;
                ids[i * t + j] = real ? s[j] : padId;
                attention[i * t + j] = real ? 1 : 0;
                loss[i * t + j] = real && (lossMasks is null || lossMasks[i][j]) ? 1f : 0f;
            }
        }
        return new TokenBatch(tensor(ids, [b, t], device: device), tensor(attention, [b, t], device: device), tensor(loss, [b, t], device: device));
    }
}
