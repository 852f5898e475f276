using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// NLPO's action mask as a logits processor: tokens outside <see cref="ITokenMask.Allowed"/> get −∞ after the
/// penalties and before temperature and top-k/top-p (RL4LMs masks the policy's logits before sampling).
/// </summary>
public sealed class TokenMaskProcessor(ITokenMask mask) : ILogitsProcessor
{
    public Tensor Process(Tensor scores, DecodingState state) => scores.masked_fill(mask.Allowed().logical_not(), float.NegativeInfinity);
}
