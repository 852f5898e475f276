using RlhfSharp.Algorithms.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>What <see cref="PpoLoss.Policy"/> returns.</summary>
/// <param name="Loss">The reduced clipped surrogate loss (0-d).</param>
/// <param name="PerTokenLoss"><c>−min(ratio·A, clip(ratio, 1−ε, 1+ε)·A)</c> at every position, [B, T].</param>
/// <param name="ClipFraction">Masked mean of <c>[surr2 &lt; surr1]</c> (OpenRLHF <c>clip_ratio</c>), detached.</param>
/// <param name="Ratio"><c>exp(logprobs − oldLogprobs)</c>, [B, T].</param>
/// <param name="ApproxKl">Masked mean of <c>oldLogprobs − logprobs</c> (OpenRLHF <c>ppo_kl</c>, the k1 estimate of KL(old‖new)), detached.</param>
public sealed record PolicyLossOutput(Tensor Loss, Tensor PerTokenLoss, Tensor ClipFraction, Tensor Ratio, Tensor ApproxKl);

/// <summary>What <see cref="PpoLoss.Value"/> returns.</summary>
/// <param name="Loss"><c>0.5 ·</c> the reduced per-token loss (0-d).</param>
/// <param name="PerTokenLoss"><c>max((v_clip − R)², (v − R)²)</c> (or <c>(v − R)²</c> unclipped) at every position, [B, T], without the 0.5.</param>
/// <param name="ClipFraction">Masked mean of <c>[(v_clip − R)² &gt; (v − R)²]</c> (TRL <c>vf_clipfrac</c>); 0 when unclipped. Detached.</param>
public sealed record ValueLossOutput(Tensor Loss, Tensor PerTokenLoss, Tensor ClipFraction);

/// <summary>
/// PPO's clipped losses (Schulman et al. 2017, arXiv:1707.06347, Eq. 7 and §5) as in OpenRLHF/OpenRLHF@3c3be62
/// <c>openrlhf/models/loss.py</c> (<c>PolicyLoss</c> with <c>policy_loss_type='ppo'</c>, no dual clip; <c>ValueLoss</c>)
/// and huggingface/trl@f2cd577 <c>trl/experimental/ppo/ppo_trainer.py</c> (<c>pg_loss</c>, <c>vf_loss</c>, <c>vf_clipfrac</c>).
/// </summary>
public static class PpoLoss
{
    /// <summary>
    /// Clipped surrogate policy loss: <c>ratio = exp(clamp(logprobs − oldLogprobs, −20, 20))</c>,
    /// <c>l_t = −min(ratio·A, clamp(ratio, 1−clipEpsLow, 1+clipEpsHigh)·A)</c>, reduced over the mask.
    /// </summary>
    /// <param name="logprobs">Log-probs of the taken tokens under the current policy, [B, T].</param>
    /// <param name="oldLogprobs">Log-probs under the rollout policy, [B, T].</param>
    /// <param name="advantages">Per-token advantages, [B, T].</param>
    /// <param name="actionMask">1.0 for response tokens, [B, T].</param>
    /// <param name="clipEps">ε (OpenRLHF <c>eps_clip</c> 0.2, TRL <c>cliprange</c> 0.2).</param>
    /// <param name="reduction">Token-level (OpenRLHF default, TRL) or sequence-level mean.</param>
    /// <param name="clipEpsHigh">Upper ε when asymmetric (DAPO "clip-higher"); defaults to <paramref name="clipEps"/>.</param>
    public static PolicyLossOutput Policy(Tensor logprobs, Tensor oldLogprobs, Tensor advantages, Tensor actionMask,
        double clipEps = 0.2, LossReduction reduction = LossReduction.TokenMean, double? clipEpsHigh = null)
    {
        var logRatio = logprobs - oldLogprobs;
        // OpenRLHF clamps the log-ratio so a stale token cannot overflow exp.
        var ratio = logRatio.clamp(-20.0, 20.0).exp();
        var surr1 = ratio * advantages;
        var surr2 = ratio.clamp(1.0 - clipEps, 1.0 + (clipEpsHigh ?? clipEps)) * advantages;
        var perToken = -torch.minimum(surr1, surr2);
        var loss = MaskedStats.Reduce(perToken, actionMask, reduction);
        using var _ = torch.no_grad();
        var clipFraction = MaskedStats.MaskedMean(surr2.lt(surr1).to_type(logprobs.dtype), actionMask);
        var approxKl = MaskedStats.MaskedMean(-logRatio.detach(), actionMask);
        return new PolicyLossOutput(loss, perToken, clipFraction, ratio, approxKl);
    }

    /// <summary>
    /// Clipped value loss: <c>v_clip = oldValues + clamp(values − oldValues, −ε, ε)</c>,
    /// <c>l_t = max((v_clip − R)², (values − R)²)</c>, <c>loss = 0.5 · reduce(l)</c>. With <paramref name="clipEps"/>
    /// null it is the unclipped <c>0.5 · reduce((values − R)²)</c>.
    /// </summary>
    /// <param name="values">Current value predictions, [B, T].</param>
    /// <param name="oldValues">Value predictions at rollout time, [B, T].</param>
    /// <param name="returns">GAE returns, [B, T].</param>
    /// <param name="actionMask">1.0 for response tokens, [B, T].</param>
    /// <param name="clipEps">ε (OpenRLHF <c>value_clip</c> 0.2, TRL <c>cliprange_value</c> 0.2); null for no clipping.</param>
    /// <param name="reduction">Token-level or sequence-level mean.</param>
    public static ValueLossOutput Value(Tensor values, Tensor oldValues, Tensor returns, Tensor actionMask,
        double? clipEps = 0.2, LossReduction reduction = LossReduction.TokenMean)
    {
        var unclipped = (values - returns).square();
        if (clipEps is not double eps)
        {
            var plain = 0.5 * MaskedStats.Reduce(unclipped, actionMask, reduction);
            return new ValueLossOutput(plain, unclipped, torch.zeros(Array.Empty<long>(), values.dtype, values.device));
        }
        var valuesClipped = oldValues + (values - oldValues).clamp(-eps, eps);
        var clipped = (valuesClipped - returns).square();
        var perToken = torch.maximum(clipped, unclipped);
        var loss = 0.5 * MaskedStats.Reduce(perToken, actionMask, reduction);
        using var _ = torch.no_grad();
        var clipFraction = MaskedStats.MaskedMean(clipped.gt(unclipped).to_type(values.dtype), actionMask);
        return new ValueLossOutput(loss, perToken, clipFraction);
    }
}
