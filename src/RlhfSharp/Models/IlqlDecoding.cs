using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// ILQL's decoding rule on a <see cref="CausalLM"/> (trlX <c>AutoModelForCausalLMWithILQLHeads.generate</c>): the
/// next-token scores are log π_β(a|s) + β·(min target Q(s, a) − V(s)), so sampling (temperature, top-k) and the
/// log-probs of what the policy emits are those of the shifted distribution π ∝ π_β·exp(β·(Q − V)). β = 0 is the plain LM.
/// </summary>
/// <param name="Heads">The trained heads (on the model's device and dtype).</param>
/// <param name="Beta">trlX's <c>gen_kwargs.beta</c> (default 1).</param>
public sealed record IlqlDecoding(IlqlHeads Heads, double Beta)
{
    /// <summary>Shifted scores (…, vocab) from the LM's <paramref name="logits"/> and the <paramref name="hidden"/> states they came from.</summary>
    public Tensor Shift(Tensor logits, Tensor hidden)
    {
        var logPi = logits.log_softmax(-1);
        return Beta == 0 ? logPi : logPi + Beta * Heads.Advantage(hidden).to(logPi.dtype);
    }
}
