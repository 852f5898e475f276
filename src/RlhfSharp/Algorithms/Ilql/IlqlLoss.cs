using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ilql;

/// <summary>The ILQL loss and its parts (each a scalar) with the tensors its diagnostics summarise.</summary>
/// <param name="Q">Each Q head's value of the taken action, (B, A).</param>
/// <param name="TargetQ">The minimum over target heads of the taken action's value, (B, A), detached.</param>
/// <param name="V">V of each action's state, (B, A).</param>
/// <param name="AwacWeight">exp(β·(target Q − V)), (B, A), detached.</param>
/// <param name="Mask">1 where an action exists (trlX <c>terminal_mask</c> = <c>dones[:, :-1]</c>).</param>
public sealed record IlqlLossOutput(Tensor Loss, Tensor LossQ, Tensor LossV, Tensor LossCql, Tensor LossAwac,
    Tensor[] Q, Tensor TargetQ, Tensor V, Tensor AwacWeight, Tensor Mask);

/// <summary>
/// ILQL's loss as trlX computes it (CarperAI/trlx@3340c2f <c>trlx/models/modeling_ilql.py</c> <c>ILQLConfig.loss</c>;
/// Snell et al. 2022 §4): for A actions (completion tokens) and A + 1 states per row,
/// <list type="bullet">
/// <item>TD: Σ_heads Σ ((Q_i(s_t, a_t) − (r_t + γ·V(s_{t+1})·d_{t+1}))·m_t)² / n, V(s′) detached;</item>
/// <item>expectile: Σ |τ − 1[Q̄ &lt; V]|·(Q̄ − V(s_t))²·m_t / n with Q̄ the detached minimum of the target heads;</item>
/// <item>CQL: Σ_heads Σ CE(Q_i(s_t, ·), a_t)·m_t / n (each Q head's values as logits);</item>
/// <item>AWAC: Σ CE(logits_t, a_t)·exp(β·(Q̄ − V))·m_t / n, the weight detached;</item>
/// </list>
/// loss = TD + expectile + cql_scale·CQL + awac_scale·AWAC, with m = <c>dones[:, :-1]</c> and n = max(1, Σ m) over the batch.
/// </summary>
public static class IlqlLoss
{
    /// <param name="actionLogits">The LM's logits at the positions that choose each action, (B, A, V).</param>
    /// <param name="qs">Each Q head at those positions, (B, A, V).</param>
    /// <param name="targetQs">Each target Q head at those positions, (B, A, V).</param>
    /// <param name="values">V at the A + 1 states, (B, A + 1).</param>
    /// <param name="actions">The action ids, (B, A).</param>
    /// <param name="rewards">Per-action rewards, (B, A): the sequence's (normalised) reward on its last action.</param>
    /// <param name="dones">(B, A + 1) trlX <c>dones</c>: 1 for a state that has a next state, 0 for the last one and padding.</param>
    public static IlqlLossOutput Compute(Tensor actionLogits, Tensor[] qs, Tensor[] targetQs, Tensor values, Tensor actions, Tensor rewards, Tensor dones,
        double gamma, double tau, double cqlScale, double awacScale, double awacBeta)
    {
        long a = actions.shape[1];
        var mask = dones.narrow(1, 0, a).to(values.dtype);
        var n = mask.sum().clamp_min(1);
        var index = actions.unsqueeze(-1);
        var q = qs.Select(x => x.gather(-1, index).squeeze(-1)).ToArray();
        var targetQ = targetQs.Select(x => x.gather(-1, index).squeeze(-1)).Aggregate(minimum).detach();

        var v = values.narrow(1, 0, a);
        var vNext = values.narrow(1, 1, a) * dones.narrow(1, 1, a).to(values.dtype);
        var qTarget = rewards + gamma * vNext.detach();
        var lossQ = q.Select(qi => ((qi - qTarget) * mask).pow(2).sum() / n).Aggregate((x, y) => x + y);
        var lossV = Expectile(targetQ, v, mask, tau) / n;
        var lossCql = qs.Select(x => (CrossEntropy(x, actions) * mask).sum() / n).Aggregate((x, y) => x + y);
        var awacWeight = exp(awacBeta * (targetQ - v)).detach();
        var lossAwac = (CrossEntropy(actionLogits, actions) * awacWeight * mask).sum() / n;
        var loss = lossQ + lossV + cqlScale * lossCql + awacScale * lossAwac;
        return new IlqlLossOutput(loss, lossQ, lossV, lossCql, lossAwac, q, targetQ, v, awacWeight, mask);
    }

    /// <summary>
    /// Σ of the expectile regression of <paramref name="v"/> on <paramref name="target"/> over <paramref name="mask"/>:
    /// τ·(target − v)² where target ≥ v, (1 − τ)·(target − v)² below (IQL, Kostrikov et al. 2021, Eq. 5; trlX <c>loss_v</c>
    /// before its division by n).
    /// </summary>
    public static Tensor Expectile(Tensor target, Tensor v, Tensor mask, double tau)
    {
        var diff2 = (target - v).pow(2);
        var above = target.ge(v).to(v.dtype);
        return ((above * tau * diff2 + (1 - above) * (1 - tau) * diff2) * mask).sum();
    }

    /// <summary>−log softmax(<paramref name="logits"/>)[action] per position, (B, A) (F.cross_entropy, reduction none).</summary>
    static Tensor CrossEntropy(Tensor logits, Tensor actions) =>
        -logits.log_softmax(-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1);

    /// <summary>
    /// Rewards normalised over the dataset as trlX's <c>make_experience</c> does: (r − mean)/(std + ε) with the
    /// unbiased std and float64's ε, left centred only when the std is undefined (one example).
    /// </summary>
    public static double[] NormalizeRewards(IReadOnlyList<double> rewards)
    {
        double mean = rewards.Average();
        var centred = rewards.Select(r => r - mean).ToArray();
        if (rewards.Count < 2) return centred;
        double std = Math.Sqrt(centred.Sum(c => c * c) / (rewards.Count - 1));
        return centred.Select(c => c / (std + 2.220446049250313e-16)).ToArray();
    }
}
