using RlhfSharp.Algorithms.GroupRl;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>Critic-free advantages: GRPO and RLOO against the fixture, the scaling options, REINFORCE++ and ReMax by hand.</summary>
[LossFixtureTests]
public class AdvantageEstimatorTests
{
    [Fact]
    public void Grpo_group_advantages_match_trl_fixture_G4_with_a_zero_std_group()
    {
        using var _ = NewDisposeScope();
        var c = Case("grpo_group_advantages_G4");
        var output = GroupAdvantages.Compute(c.Input("rewards"), (int)c.Param("group_size"), RewardScaling.Group, c.Param("eps"));
        AssertClose(output.Advantages, c.Expected("advantages"), DoubleTolerance, "advantages");
        AssertClose(output.GroupMean, c.Expected("group_mean"), DoubleTolerance, "group_mean");
        AssertClose(output.GroupStd, c.Expected("group_std"), DoubleTolerance, "group_std");
    }

    static readonly double[] Rewards = [1.0, 0.0, 0.5, 0.25, 2.0, -1.0, 0.0, 3.0];

    [Fact]
    public void Grpo_batch_scaling_divides_group_centred_rewards_by_the_batch_std()
    {
        using var _ = NewDisposeScope();
        // trl/trainer/grpo_trainer.py scale_rewards='batch': group mean, but the unbiased std of all rewards.
        double mean = Rewards.Average();
        double std = Math.Sqrt(Rewards.Sum(r => (r - mean) * (r - mean)) / (Rewards.Length - 1));
        var expected = Rewards.Select((r, i) => (r - Rewards.Skip(i / 4 * 4).Take(4).Average()) / (std + 1e-4)).ToArray();
        AssertClose(GroupAdvantages.Compute(tensor(Rewards), 4, RewardScaling.Batch).Advantages, expected, DoubleTolerance);
    }

    [Fact]
    public void Grpo_no_scaling_only_centres_each_group()
    {
        using var _ = NewDisposeScope();
        var expected = Rewards.Select((r, i) => r - Rewards.Skip(i / 4 * 4).Take(4).Average()).ToArray();
        AssertClose(GroupAdvantages.Compute(tensor(Rewards), 4, RewardScaling.None).Advantages, expected, DoubleTolerance);
    }

    [Fact]
    public void Rloo_leave_one_out_matches_openrlhf_fixture_G4()
    {
        using var _ = NewDisposeScope();
        var c = Case("rloo_leave_one_out_G4");
        var (baselines, advantages) = LeaveOneOutBaseline.Compute(c.Input("rewards"), (int)c.Param("group_size"));
        AssertClose(baselines, c.Expected("baselines"), DoubleTolerance, "baselines");
        AssertClose(advantages, c.Expected("advantages"), DoubleTolerance, "advantages");
    }

    [Fact]
    public void Rloo_normalized_advantages_are_whitened_over_the_batch()
    {
        using var _ = NewDisposeScope();
        // trl/trainer/rloo_trainer.py normalize_advantages: (A − mean) / (std_unbiased + 1e-4).
        var adv = Rewards.Select((r, i) => r - (Rewards.Skip(i / 4 * 4).Take(4).Sum() - r) / 3).ToArray();
        double mean = adv.Average(), std = Math.Sqrt(adv.Sum(a => (a - mean) * (a - mean)) / (adv.Length - 1));
        var (_, normalized) = LeaveOneOutBaseline.Compute(tensor(Rewards), 4, normalizeAdvantages: true);
        AssertClose(normalized, adv.Select(a => (a - mean) / (std + 1e-4)).ToArray(), DoubleTolerance);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.9)]
    public void Reinforce_plus_plus_whitens_discounted_returns_over_all_valid_tokens(double gamma)
    {
        using var _ = NewDisposeScope();
        // openrlhf/trainer/ppo_utils/experience_maker.py: get_cumulative_returns on r·m, then
        // (x − μ)·rsqrt(max(σ², 1e-8)) with the biased masked variance over the whole batch (padding transformed too).
        double[,] r = { { 0.1, -0.2, 0.3, 1.0 }, { -0.1, 0.5, 7.0, 9.0 } };
        double[,] m = { { 1, 1, 1, 1 }, { 1, 1, 0, 0 } };
        var ret = new double[8];
        for (int i = 0; i < 2; i++)
        {
            double g = 0;
            for (int t = 3; t >= 0; t--) ret[i * 4 + t] = g = r[i, t] * m[i, t] + gamma * g;
        }
        double n = 0, s = 0;
        for (int k = 0; k < 8; k++) { n += m[k / 4, k % 4]; s += ret[k] * m[k / 4, k % 4]; }
        double mu = s / n, v = 0;
        for (int k = 0; k < 8; k++) v += (ret[k] - mu) * (ret[k] - mu) * m[k / 4, k % 4];
        v /= n;
        var expectedAdv = ret.Select(x => (x - mu) / Math.Sqrt(Math.Max(v, 1e-8))).ToArray();

        var (advantages, returns) = ReinforcePlusPlusAdvantages.Compute(
            tensor(r.Cast<double>().ToArray()).view(2, 4), tensor(m.Cast<double>().ToArray()).view(2, 4), gamma);
        AssertClose(returns, ret, DoubleTolerance, "returns");
        AssertClose(advantages, expectedAdv, DoubleTolerance, "advantages");
    }

    [Fact]
    public void Remax_advantage_is_sampled_minus_greedy_reward_on_valid_tokens()
    {
        using var _ = NewDisposeScope();
        var sampled = tensor(new[] { 0.7, -0.2 });
        var greedy = tensor(new[] { 0.5, 0.1 });
        var mask = tensor(new[] { 1.0, 1.0, 1.0, 1.0, 0.0, 0.0 }).view(2, 3);
        AssertClose(ReMaxBaseline.Advantages(sampled, greedy), new[] { 0.7 - 0.5, -0.2 - 0.1 }, DoubleTolerance);
        AssertClose(ReMaxBaseline.PerToken(sampled, greedy, mask), new[] { 0.7 - 0.5, 0.7 - 0.5, 0.7 - 0.5, -0.2 - 0.1, 0.0, 0.0 }, DoubleTolerance);
    }
}
