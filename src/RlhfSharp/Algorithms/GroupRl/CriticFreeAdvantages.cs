using RlhfSharp.Algorithms.Ppo;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.GroupRl;

/// <summary>What <see cref="CriticFreeAdvantages.Compute"/> returns.</summary>
/// <param name="Advantages">Per-token advantages, zero on padding, [B, T].</param>
/// <param name="Rewards">The sequence reward the baseline was taken from (the score, minus the folded KL where the estimator folds it), [B].</param>
/// <param name="Baselines">The baseline subtracted from each reward, [B]; null for REINFORCE++ (its baseline is the batch whitening).</param>
/// <param name="ZeroStdFraction">Fraction of groups whose scores are all equal (no learning signal under GRPO); 0 when G = 1.</param>
public sealed record CriticFreeAdvantagesOutput(Tensor Advantages, Tensor Rewards, Tensor? Baselines, double ZeroStdFraction);

/// <summary>
/// Advantages of the critic-free estimators from sequence scores laid out as consecutive groups of G completions of one
/// prompt. Each estimator's math lives in its own class (<see cref="GroupAdvantages"/>, <see cref="LeaveOneOutBaseline"/>,
/// <see cref="ReinforcePlusPlusAdvantages"/>, <see cref="ReMaxBaseline"/>); this only chooses and wires them.
/// </summary>
public static class CriticFreeAdvantages
{
    /// <param name="scores">Reward-model scores, [P·G], group-major.</param>
    /// <param name="kl">Per-token k1 KL to the reference (<c>logprobs − refLogprobs</c>), [B, T]; folded into the reward
    /// with <paramref name="rewardKlCoef"/> by every estimator except GRPO.</param>
    /// <param name="mask">1.0 for completion tokens, [B, T].</param>
    /// <param name="greedyScores">ReMax only: the reward of each prompt's greedy completion, [P], with its own KL folded in
    /// as the sampled rewards have theirs (<c>score − rewardKlCoef·Σk1</c>), so the penalty does not bias the advantage.</param>
    public static CriticFreeAdvantagesOutput Compute(AdvantageEstimator estimator, Tensor scores, Tensor kl, Tensor mask, int groupSize,
        double rewardKlCoef = 0.0, RewardScaling scaling = RewardScaling.Group, Tensor? greedyScores = null)
    {
        if (scores.dim() != 1 || scores.shape[0] % groupSize != 0)
            throw new ArgumentException($"scores must be 1-D with a length divisible by the group size {groupSize}.", nameof(scores));
        using var _ = no_grad();
        kl = kl * mask;
        double zeroStd = groupSize < 2 ? 0.0
            : scores.view(-1, groupSize).std(1, unbiased: true).lt(1e-6).to(float32).mean().item<float>();
        var klRewards = scores - rewardKlCoef * kl.sum(1);
        Tensor PerToken(Tensor a) => a.unsqueeze(1) * mask;

        switch (estimator)
        {
            case AdvantageEstimator.Grpo:
            {
                // GRPO keeps the KL out of the reward: it is a separate k3 loss term (DeepSeekMath Eq. 3).
                var g = GroupAdvantages.Compute(scores, groupSize, scaling);
                return new(PerToken(g.Advantages), scores, g.GroupMean.repeat_interleave(groupSize), zeroStd);
            }
            case AdvantageEstimator.Rloo:
            {
                var (baselines, advantages) = LeaveOneOutBaseline.Compute(klRewards, groupSize);
                return new(PerToken(advantages), klRewards, baselines, zeroStd);
            }
            case AdvantageEstimator.ReinforcePp:
            case AdvantageEstimator.ReinforcePpBaseline:
            {
                // reinforce_baseline (OpenRLHF experience_maker.py) centres the scores on the group mean before the
                // KL-shaped token rewards, which removes the prompt's difficulty from the returns.
                var centred = estimator == AdvantageEstimator.ReinforcePp ? scores
                    : (scores.view(-1, groupSize) - scores.view(-1, groupSize).mean([1], keepdim: true)).view(-1);
                var tokenRewards = KlShapedReward.Compute(centred, kl, mask, rewardKlCoef);
                var (advantages, _) = ReinforcePlusPlusAdvantages.Compute(tokenRewards, mask);
                return new(advantages * mask, centred - rewardKlCoef * kl.sum(1), null, zeroStd);
            }
            case AdvantageEstimator.Remax:
            {
                if (greedyScores is null || greedyScores.shape[0] * groupSize != scores.shape[0])
                    throw new ArgumentException("ReMax needs one greedy score per prompt.", nameof(greedyScores));
                var baselines = greedyScores.repeat_interleave(groupSize);
                return new(ReMaxBaseline.PerToken(klRewards, baselines, mask), klRewards, baselines, zeroStd);
            }
            default: throw new ArgumentOutOfRangeException(nameof(estimator));
        }
    }
}
