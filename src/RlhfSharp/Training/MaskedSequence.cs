namespace RlhfSharp.Training;

/// <summary>Token ids with a per-token loss mask (1 where the token is a training target, e.g. a response token).</summary>
public sealed record MaskedSequence(int[] Ids, float[] LossMask)
{
    public MaskedSequence Truncate(int maxLength) => Ids.Length <= maxLength ? this : new(Ids[..maxLength], LossMask[..maxLength]);
}
