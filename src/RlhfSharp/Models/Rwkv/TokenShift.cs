using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models.Rwkv;

/// <summary>
/// RWKV's token shift: each position mixes its input with the previous token's (modeling_rwkv.py: <c>nn.ZeroPad2d((0, 0, 1, -1))</c>,
/// with the state's last token in front when decoding). With a padding mask the previous token is the previous *real* one,
/// so pads are skipped as if absent: the first real token of a left-padded row sees the state (zeros at the start), as the
/// unpadded row does.
/// </summary>
public static class TokenShift
{
    /// <param name="x">(B, T, D): this block's normed input.</param>
    /// <param name="previous">(B, D): the last token before these (the state), or null for zeros.</param>
    /// <param name="realTokens">(B, T) booleans, or null when every token is real.</param>
    /// <returns>The shifted input (B, T, D), and the last real token's row (B, D), the state for what follows.</returns>
    public static (Tensor Shifted, Tensor Last) Apply(Tensor x, Tensor? previous, Tensor? realTokens)
    {
        long b = x.shape[0], t = x.shape[1], d = x.shape[2];
        var front = (previous ?? zeros([b, d], x.dtype, x.device)).to(x.dtype).unsqueeze(1);
        if (realTokens is null)
            return (cat([front, x.narrow(1, 0, t - 1)], 1), x.select(1, t - 1));
        // lastReal[t] = index of the last real token at or before t, −1 when none: a running max over real indices.
        var index = arange(t, dtype: ScalarType.Int64, device: x.device).unsqueeze(0).expand(b, t);
        var lastReal = where(realTokens, index, full([b, t], -1L, ScalarType.Int64, x.device)).cummax(1).values;
        // Row 0 of the source is the state; row j + 1 is token j.
        var source = cat([front, x], 1);
        var before = cat([full([b, 1], -1L, ScalarType.Int64, x.device), lastReal.narrow(1, 0, t - 1)], 1) + 1;
        var shifted = source.gather(1, before.unsqueeze(-1).expand(b, t, d));
        var last = source.gather(1, (lastReal.narrow(1, t - 1, 1) + 1).unsqueeze(-1).expand(b, 1, d)).squeeze(1);
        return (shifted, last);
    }
}
