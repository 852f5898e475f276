using RlhfSharp.Algorithms.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>
/// SimPO: reference-free preference loss on length-normalised log-probs with a target margin γ (Meng et al. 2024,
/// arXiv:2405.14734, Eq. 6), as huggingface/trl@f2cd577 <c>trl/experimental/cpo/cpo_trainer.py</c> computes it
/// (<c>cpo_loss</c> with <c>loss_type='simpo'</c>; log-probs averaged per token since <c>average_log_prob</c> is set for simpo).
/// </summary>
public static class SimpoLoss
{
    /// <summary>
    /// <c>z = β·((logp_w − logp_l) − γ/β) = β·Δ − γ</c>, <c>losses = −(1−ε)·logσ(z) − ε·logσ(−z)</c>, with rewards
    /// <c>β·logp</c>. TRL's <c>CPOTrainer</c> adds <c>cpo_alpha·NLL</c> (default 1.0); the SimPO paper has no such term,
    /// so add it yourself if you want CPO-SimPO.
    /// </summary>
    /// <param name="policyChosenLogps">Length-averaged log-probs of the chosen responses, [B].</param>
    /// <param name="policyRejectedLogps">Length-averaged log-probs of the rejected responses, [B].</param>
    /// <param name="beta">β (TRL <c>CPOConfig.beta</c> 0.1; the SimPO paper uses 2.0–2.5).</param>
    /// <param name="gamma">Target reward margin γ (TRL <c>CPOConfig.simpo_gamma</c>, default 0.5).</param>
    /// <param name="labelSmoothing">ε (TRL <c>CPOConfig.label_smoothing</c>, default 0).</param>
    public static PreferenceLossOutput Compute(Tensor policyChosenLogps, Tensor policyRejectedLogps,
        double beta = 0.1, double gamma = 0.5, double labelSmoothing = 0.0)
    {
        var logits = (policyChosenLogps - policyRejectedLogps) - gamma / beta;
        return PreferenceLossOutput.Of(DpoLoss.SmoothedSigmoid(logits, beta, labelSmoothing), beta * policyChosenLogps, beta * policyRejectedLogps);
    }
}
