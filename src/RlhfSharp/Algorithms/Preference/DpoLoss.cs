using RlhfSharp.Algorithms.Common;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>
/// Direct Preference Optimization on sequence-level (summed) log-probs, as OpenRLHF/OpenRLHF@3c3be62
/// <c>openrlhf/models/loss.py</c> <c>DPOLoss</c> computes it; the sigmoid form equals the <c>'sigmoid'</c> loss of
/// huggingface/trl@f2cd577 <c>trl/trainer/dpo_trainer.py</c>. With
/// <c>h = (logπ(y_w) − logπ(y_l)) − (logπ_ref(y_w) − logπ_ref(y_l))</c>:
/// DPO is Rafailov et al. 2023 (arXiv:2305.18290) Eq. 7, cDPO is Mitchell 2023 ("A note on DPO with noisy
/// preferences") Eq. 3, IPO is Azar et al. 2023 (arXiv:2310.12036) Eq. 17.
/// </summary>
public static class DpoLoss
{
    /// <summary>
    /// <c>losses = −(1−ε)·logσ(β·h) − ε·logσ(−β·h)</c> (ε = <paramref name="labelSmoothing"/>; 0 gives plain DPO),
    /// with implicit rewards <c>β·(logπ − logπ_ref)</c> for chosen and rejected.
    /// </summary>
    /// <param name="policyChosenLogps">Summed log-probs of the chosen responses under the policy, [B].</param>
    /// <param name="policyRejectedLogps">Same for the rejected responses, [B].</param>
    /// <param name="referenceChosenLogps">Chosen responses under the frozen reference, [B].</param>
    /// <param name="referenceRejectedLogps">Rejected responses under the reference, [B].</param>
    /// <param name="beta">β (TRL and OpenRLHF default 0.1).</param>
    /// <param name="labelSmoothing">cDPO's assumed label-flip probability ε, in [0, 0.5).</param>
    public static PreferenceLossOutput Sigmoid(Tensor policyChosenLogps, Tensor policyRejectedLogps,
        Tensor referenceChosenLogps, Tensor referenceRejectedLogps, double beta = 0.1, double labelSmoothing = 0.0)
    {
        var h = Logits(policyChosenLogps, policyRejectedLogps, referenceChosenLogps, referenceRejectedLogps);
        return Output(SmoothedSigmoid(h, beta, labelSmoothing), policyChosenLogps, policyRejectedLogps, referenceChosenLogps, referenceRejectedLogps, beta);
    }

    /// <summary>
    /// IPO: <c>losses = (h − 1/(2β))²</c> on summed log-probs (OpenRLHF <c>DPOLoss(ipo=True)</c>). TRL's current
    /// <c>'ipo'</c> first divides each log-ratio by the completion length: <see cref="IpoLengthNormalised"/>.
    /// </summary>
    public static PreferenceLossOutput Ipo(Tensor policyChosenLogps, Tensor policyRejectedLogps,
        Tensor referenceChosenLogps, Tensor referenceRejectedLogps, double beta = 0.1)
    {
        var h = Logits(policyChosenLogps, policyRejectedLogps, referenceChosenLogps, referenceRejectedLogps);
        var losses = (h - 1.0 / (2.0 * beta)).square();
        return Output(losses, policyChosenLogps, policyRejectedLogps, referenceChosenLogps, referenceRejectedLogps, beta);
    }

    /// <summary>
    /// TRL's <c>'ipo'</c> (huggingface/trl@f2cd577 <c>trl/trainer/dpo_trainer.py</c>, <c>_compute_loss</c>): each log-ratio
    /// <c>logπ − logπ_ref</c> is divided by its completion's token count (at least 1) before
    /// <c>losses = (Δ − 1/(2β))²</c>, while the logged rewards stay <c>β·(logπ − logπ_ref)</c> of the summed log-probs.
    /// </summary>
    /// <param name="chosenLengths">Completion tokens of each chosen response, [B].</param>
    /// <param name="rejectedLengths">Completion tokens of each rejected response, [B].</param>
    public static PreferenceLossOutput IpoLengthNormalised(Tensor policyChosenLogps, Tensor policyRejectedLogps,
        Tensor referenceChosenLogps, Tensor referenceRejectedLogps, Tensor chosenLengths, Tensor rejectedLengths, double beta = 0.1)
    {
        var (lc, lr) = (chosenLengths.clamp_min(1.0), rejectedLengths.clamp_min(1.0));
        // Grouped as (policy margin) − (reference margin), the order this trainer used before, so results stay
        // bit-identical; TRL's (chosen ratio) − (rejected ratio) differs only in rounding.
        var h = Logits(policyChosenLogps / lc, policyRejectedLogps / lr, referenceChosenLogps / lc, referenceRejectedLogps / lr);
        var losses = (h - 1.0 / (2.0 * beta)).square();
        return Output(losses, policyChosenLogps, policyRejectedLogps, referenceChosenLogps, referenceRejectedLogps, beta);
    }

    /// <summary>
    /// The label-smoothed sigmoid loss of each pair, <c>−(1−ε)·logσ(β·h) − ε·logσ(−β·h)</c>, [B]: DPO and cDPO on the
    /// reference margin, SimPO on its length-normalised margin less γ/β.
    /// </summary>
    public static Tensor SmoothedSigmoid(Tensor h, double beta, double labelSmoothing) =>
        -F.logsigmoid(beta * h) * (1.0 - labelSmoothing) - F.logsigmoid(-beta * h) * labelSmoothing;

    /// <summary><c>h = (logπ(y_w) − logπ(y_l)) − (logπ_ref(y_w) − logπ_ref(y_l))</c>, [B].</summary>
    public static Tensor Logits(Tensor policyChosenLogps, Tensor policyRejectedLogps, Tensor referenceChosenLogps, Tensor referenceRejectedLogps)
        => (policyChosenLogps - policyRejectedLogps) - (referenceChosenLogps - referenceRejectedLogps);

    static PreferenceLossOutput Output(Tensor losses, Tensor policyChosenLogps, Tensor policyRejectedLogps,
        Tensor referenceChosenLogps, Tensor referenceRejectedLogps, double beta)
    {
        return PreferenceLossOutput.Of(losses, beta * (policyChosenLogps - referenceChosenLogps), beta * (policyRejectedLogps - referenceRejectedLogps));
    }
}
