using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models.Rwkv;

/// <summary>One block's WKV sums for every row, each (B, attention width), float32 (see <see cref="RwkvState"/>).</summary>
public readonly record struct WkvState(Tensor Numerator, Tensor Denominator, Tensor Exponent);

/// <summary>
/// RWKV-4's WKV operator, the time mix's attention substitute: per channel,
/// wkv_t = (Σ_{i&lt;t} e^{(t−1−i)w + k_i} v_i + e^{u + k_t} v_t) / (Σ_{i&lt;t} e^{(t−1−i)w + k_i} + e^{u + k_t}), with
/// w = −e^{time_decay} and u = time_first. Computed as the recurrence of HF's CPU path (modeling_rwkv.py
/// <c>rwkv_linear_attention_cpu</c>, the numerically stable form of the RWKV-4 CUDA kernel): the sums are kept divided by
/// e^p for a running maximum exponent p, so no exponential overflows. Float32 throughout, whatever the model's dtype.
/// </summary>
public static class Wkv
{
    /// <summary>The starting exponent of HF's stateless forward (<c>zeros − 1e38</c>): e^(p−q) is 0 for any real q.</summary>
    public const float StatelessExponent = -1e38f;

    /// <summary>The sums before any token: zero, with the stateless starting exponent.</summary>
    public static WkvState Empty(long batch, long width, Device device) =>
        new(zeros([batch, width], ScalarType.Float32, device), zeros([batch, width], ScalarType.Float32, device),
            full([batch, width], StatelessExponent, ScalarType.Float32, device));

    /// <summary>
    /// WKV over T steps. <paramref name="realTokens"/> (B, T), when given, marks the steps that update the sums: at a padding
    /// step (0) a row's sums stay as they were, so a left-padded row computes exactly what the unpadded row does (the pad
    /// step's own output is produced but means nothing). HF ignores the mask and lets pads into the state.
    /// </summary>
    /// <param name="timeDecay">time_decay (A): w = −e^{time_decay}.</param>
    /// <param name="timeFirst">time_first (A): u, the bonus of the current token.</param>
    /// <param name="key">(B, T, A).</param>
    /// <param name="value">(B, T, A).</param>
    /// <returns>The output (B, T, A) in the key's dtype, and the sums after the last step.</returns>
    public static (Tensor Output, WkvState State) Scan(Tensor timeDecay, Tensor timeFirst, Tensor key, Tensor value, WkvState state, Tensor? realTokens)
    {
        long t = key.shape[1];
        var w = -timeDecay.to(ScalarType.Float32).exp();
        var u = timeFirst.to(ScalarType.Float32);
        var k = key.to(ScalarType.Float32);
        var v = value.to(ScalarType.Float32); // HF promotes the value inside each product: the same numbers
        var (a, b, p) = (state.Numerator, state.Denominator, state.Exponent);
        var outputs = new Tensor[t];
        for (long i = 0; i < t; i++)
        {
            var ki = k.select(1, i);
            var vi = v.select(1, i);
            var uk = ki + u;
            // Output at step i: the current token gets the bonus u instead of the decay.
            var q = maximum(p, uk);
            var e1 = (p - q).exp();
            var e2 = (uk - q).exp();
            outputs[i] = (e1 * a + e2 * vi) / (e1 * b + e2);
            // Sums for the next step: decay the past by e^w, add this token with weight e^k.
            var pw = p + w;
            var q2 = maximum(pw, ki);
            var d1 = (pw - q2).exp();
            var d2 = (ki - q2).exp();
            var a2 = d1 * a + d2 * vi;
            var b2 = d1 * b + d2;
            if (realTokens is null) (a, b, p) = (a2, b2, q2);
            else
            {
                var real = realTokens.select(1, i).unsqueeze(1);
                (a, b, p) = (where(real, a2, a), where(real, b2, b), where(real, q2, p));
            }
        }
        return (stack(outputs, 1).to(key.dtype), new WkvState(a, b, p));
    }
}
