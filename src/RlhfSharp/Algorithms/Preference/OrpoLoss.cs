using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>What <see cref="OrpoLoss.Compute"/> returns.</summary>
/// <param name="Loss"><c>NLL(chosen) + mean(OddsRatioLosses)</c> (0-d).</param>
/// <param name="OddsRatioLosses"><c>−λ·logσ(log odds ratio)</c> per pair, [B] (TRL returns the negation, <c>λ·logσ(·)</c>).</param>
/// <param name="ChosenRewards"><c>λ·logπ(y_w)</c>, [B], detached.</param>
/// <param name="RejectedRewards"><c>λ·logπ(y_l)</c>, [B], detached.</param>
/// <param name="LogOdds">The log odds ratio <c>log(odds(y_w)/odds(y_l))</c> per pair, [B].</param>
public sealed record OrpoLossOutput(Tensor Loss, Tensor OddsRatioLosses, Tensor ChosenRewards, Tensor RejectedRewards, Tensor LogOdds);

/// <summary>
/// ORPO: monolithic preference optimization without a reference model (Hong et al. 2024, arXiv:2403.07691,
/// Eqs. 4–7), as huggingface/trl@f2cd577 <c>trl/experimental/orpo/orpo_trainer.py</c> computes it
/// (<c>odds_ratio_loss</c>, <c>log1mexp</c>, <c>get_batch_loss_metrics</c>: <c>loss = policy_nll_loss − losses.mean()</c>).
/// </summary>
public static class OrpoLoss
{
    /// <summary>
    /// <c>log_odds = (logp_w − logp_l) − (log(1 − e^{logp_w}) − log(1 − e^{logp_l}))</c>,
    /// <c>loss = nll + mean(−λ·logσ(log_odds))</c>. The log-probs are the per-token <b>averages</b> over each completion
    /// (TRL calls <c>get_batch_logps(average_log_prob=True)</c>), so they are &lt; 0 and the odds are finite.
    /// </summary>
    /// <param name="policyChosenLogps">Length-averaged log-probs of the chosen responses, [B].</param>
    /// <param name="policyRejectedLogps">Length-averaged log-probs of the rejected responses, [B].</param>
    /// <param name="chosenNll">The SFT cross-entropy on the chosen responses (0-d); pass a zero tensor to get the odds-ratio term alone.</param>
    /// <param name="beta">λ of the paper (TRL <c>ORPOConfig.beta</c>, default 0.1).</param>
    public static OrpoLossOutput Compute(Tensor policyChosenLogps, Tensor policyRejectedLogps, Tensor chosenNll, double beta = 0.1)
    {
        var logOdds = (policyChosenLogps - policyRejectedLogps) - (Log1mExp(policyChosenLogps) - Log1mExp(policyRejectedLogps));
        var losses = -beta * F.logsigmoid(logOdds);
        var chosenRewards = (beta * policyChosenLogps).detach();
        var rejectedRewards = (beta * policyRejectedLogps).detach();
        return new OrpoLossOutput(chosenNll + losses.mean(), losses, chosenRewards, rejectedRewards, logOdds);
    }

    /// <summary>
    /// <c>log(1 − exp(x))</c> for <c>x &lt; 0</c> without cancellation: <c>log1p(−exp(x))</c> below <c>−ln 2</c>,
    /// <c>log(−expm1(x))</c> above (Mächler 2012, "Accurately computing log(1 − exp(−|a|))"; TRL <c>log1mexp</c>).
    /// </summary>
    public static Tensor Log1mExp(Tensor x)
        => torch.where(x.lt(-0.6931471805599453), torch.log1p(-x.exp()), (-torch.expm1(x)).log());
}
