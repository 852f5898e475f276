using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>What <see cref="KtoLoss.Compute"/> returns.</summary>
/// <param name="Loss">Mean of <paramref name="Losses"/> (0-d).</param>
/// <param name="Losses">Weighted losses of the desirable examples followed by those of the undesirable ones, [Bw + Bl].</param>
/// <param name="ChosenRewards"><c>β·(logπ − logπ_ref)</c> of the desirable examples, [Bw], detached.</param>
/// <param name="RejectedRewards">Same for the undesirable examples, [Bl], detached.</param>
public sealed record KtoLossOutput(Tensor Loss, Tensor Losses, Tensor ChosenRewards, Tensor RejectedRewards);

/// <summary>
/// KTO: Kahneman–Tversky optimisation on unpaired desirable/undesirable examples (Ethayarajh et al. 2024,
/// arXiv:2402.01306, Eq. 7), as huggingface/trl@f2cd577 <c>trl/trainer/kto_trainer.py</c> computes it
/// (<c>loss_type='kto'</c>: <c>chosen_losses = 1 − σ(β(log r_w − z_ref))</c>,
/// <c>rejected_losses = 1 − σ(β(z_ref − log r_l))</c>, <c>loss = nanmean(cat(λ_D·chosen, λ_U·rejected))</c>).
/// Log-probs are summed over each completion.
/// </summary>
public static class KtoLoss
{
    /// <summary>
    /// The reference point <c>z_ref = max(0, mean(logπ(y'|x) − logπ_ref(y'|x)))</c> over mismatched (x, y') pairs,
    /// detached (TRL: <c>(KL_logps − ref_KL_logps).mean().detach()</c>, gathered, <c>clamp(min=0)</c>).
    /// </summary>
    public static Tensor ReferencePoint(Tensor policyKlLogps, Tensor referenceKlLogps)
        => (policyKlLogps - referenceKlLogps).mean().clamp_min(0.0).detach();

    /// <summary>KTO losses for a batch split into desirable (chosen) and undesirable (rejected) examples; either part may be empty.</summary>
    /// <param name="policyChosenLogps">Summed log-probs of the desirable completions under the policy, [Bw].</param>
    /// <param name="referenceChosenLogps">Same under the reference, [Bw].</param>
    /// <param name="policyRejectedLogps">Summed log-probs of the undesirable completions under the policy, [Bl].</param>
    /// <param name="referenceRejectedLogps">Same under the reference, [Bl].</param>
    /// <param name="kl">The reference point z_ref (0-d), e.g. from <see cref="ReferencePoint"/>.</param>
    /// <param name="beta">β (TRL <c>KTOConfig.beta</c>, default 0.1).</param>
    /// <param name="desirableWeight">λ_D (default 1.0).</param>
    /// <param name="undesirableWeight">λ_U (default 1.0).</param>
    public static KtoLossOutput Compute(Tensor policyChosenLogps, Tensor referenceChosenLogps,
        Tensor policyRejectedLogps, Tensor referenceRejectedLogps, Tensor kl,
        double beta = 0.1, double desirableWeight = 1.0, double undesirableWeight = 1.0)
    {
        var chosenLogratios = policyChosenLogps - referenceChosenLogps;
        var rejectedLogratios = policyRejectedLogps - referenceRejectedLogps;
        var chosenLosses = 1.0 - torch.sigmoid(beta * (chosenLogratios - kl));
        var rejectedLosses = 1.0 - torch.sigmoid(beta * (kl - rejectedLogratios));
        var losses = torch.cat(new[] { desirableWeight * chosenLosses, undesirableWeight * rejectedLosses }, 0);
        // TRL takes nanmean. TorchSharp 0.107's Tensor.nanmean() without a dtype throws "Unsupported TypeMeta"
        // (it passes an uninitialised dtype to ATen), so the NaN-skipping mean is written out.
        var valid = losses.isnan().logical_not();
        var loss = torch.where(valid, losses, torch.zeros_like(losses)).sum() / valid.sum().to_type(losses.dtype);
        return new KtoLossOutput(loss, losses, (beta * chosenLogratios).detach(), (beta * rejectedLogratios).detach());
    }
}
