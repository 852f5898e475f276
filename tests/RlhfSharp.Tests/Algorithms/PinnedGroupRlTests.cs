using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// GRPO's loss aggregations, RLOO and ReMax with the KL folded into the reward, and REINFORCE++-baseline against
/// fixtures/losses/pinned.json (generate_pinned.py: TRL f2cd577, OpenRLHF 3c3be62, ReMax Algorithm 1).
/// </summary>
[LossFixtureTests]
public class PinnedGroupRlTests
{
    [Theory]
    [InlineData(LossAggregation.SeqMeanTokenMean, "loss_grpo")]
    [InlineData(LossAggregation.TokenMean, "loss_dapo")]
    [InlineData(LossAggregation.SeqMeanTokenSumNorm, "loss_dr_grpo")]
    public void Grpo_loss_aggregation_matches_trl_loss_type(LossAggregation aggregation, string key)
    {
        using var _ = NewDisposeScope();
        var c = Case("grpo_loss_aggregations_eps0.2_0.28_beta0.04");
        var (logprobs, mask) = (c.Input("logprobs"), c.Input("completion_mask"));
        // GroupRlTrainer.Update: the clipped surrogate on sequence advantages broadcast over tokens, plus β·k3 to the reference.
        var advantages = c.Input("advantages").unsqueeze(1) * mask;
        var pol = PpoLoss.Policy(logprobs, c.Input("old_logprobs"), advantages, mask, c.Param("clip_eps_low"), clipEpsHigh: c.Param("clip_eps_high"));
        var perToken = pol.PerTokenLoss + c.Param("beta") * KlEstimator.K3(logprobs, c.Input("ref_logprobs"));
        AssertClose(perToken * mask, MaskedExpected(c, "per_token_loss", mask), DoubleTolerance, "per_token_loss");
        double stepTokens = mask.sum().item<double>();
        int sequences = (int)mask.shape[0];
        var loss = GroupRlLoss.Aggregate(perToken, mask, aggregation, stepTokens, sequences, (int)c.Param("max_completion_length"));
        AssertClose(loss, c.Expected(key).GetDouble(), DoubleTolerance, key);
    }

    /// <summary>An expected [B, T] tensor times the mask: padding positions are outside every loss.</summary>
    static double[] MaskedExpected(LossCase c, string key, Tensor mask)
    {
        var (data, _) = Flatten(c.Expected(key));
        var m = mask.contiguous().data<double>().ToArray();
        return data.Select((x, i) => x * m[i]).ToArray();
    }

    [Fact]
    public void Rloo_with_kl_in_reward_matches_trl_rloo_trainer()
    {
        using var _ = NewDisposeScope();
        var c = Case("rloo_kl_in_reward_G4_beta0.05");
        var mask = c.Input("completion_mask");
        var kl = KlEstimator.K1(c.Input("logprobs"), c.Input("ref_logprobs"));
        var output = CriticFreeAdvantages.Compute(AdvantageEstimator.Rloo, c.Input("scores"), kl, mask, (int)c.Param("group_size"), c.Param("beta"));
        AssertClose(output.Rewards, c.Expected("rewards"), DoubleTolerance, "rewards");
        AssertClose(output.Baselines!, c.Expected("baselines"), DoubleTolerance, "baselines");
        AssertClose(output.Advantages.select(1, 0), c.Expected("advantages"), DoubleTolerance, "advantages");
        AssertClose(output.Advantages, c.Expected("token_advantages"), DoubleTolerance, "token_advantages");
    }

    [Fact]
    public void Reinforce_pp_baseline_matches_openrlhf_reinforce_baseline()
    {
        using var _ = NewDisposeScope();
        var c = Case("reinforce_pp_baseline_G4_kl0.05");
        var mask = c.Input("action_mask");
        var kl = KlEstimator.K1(c.Input("logprobs"), c.Input("ref_logprobs"));
        var output = CriticFreeAdvantages.Compute(AdvantageEstimator.ReinforcePpBaseline, c.Input("scores"), kl, mask,
            (int)c.Param("group_size"), c.Param("kl_coef"));
        AssertClose(output.Rewards, c.Expected("sequence_rewards"), DoubleTolerance, "sequence_rewards");
        AssertClose(output.Advantages, c.Expected("advantages_masked"), DoubleTolerance, "advantages_masked");
        // The returns before whitening, from the same KL-shaped token rewards (OpenRLHF compute_reward → get_cumulative_returns).
        var centred = c.Input("scores").view(-1, 4) - c.Input("scores").view(-1, 4).mean([1], keepdim: true);
        var tokenRewards = KlShapedReward.Compute(centred.view(-1), kl * mask, mask, c.Param("kl_coef"));
        var returns = RlhfSharp.Algorithms.GroupRl.ReinforcePlusPlusAdvantages.CumulativeReturns(tokenRewards, mask, c.Param("gamma"));
        AssertClose(returns * mask, MaskedExpected(c, "returns", mask), DoubleTolerance, "returns");
    }

    [Fact]
    public void Remax_with_kl_in_reward_matches_the_greedy_baseline_of_algorithm_1()
    {
        using var _ = NewDisposeScope();
        var c = Case("remax_kl_in_reward_beta0.05");
        var mask = c.Input("completion_mask");
        var kl = KlEstimator.K1(c.Input("logprobs"), c.Input("ref_logprobs"));
        var output = CriticFreeAdvantages.Compute(AdvantageEstimator.Remax, c.Input("scores"), kl, mask, (int)c.Param("samples_per_prompt"),
            c.Param("beta"), greedyScores: c.Input("greedy_rewards"));
        AssertClose(output.Rewards, c.Expected("rewards"), DoubleTolerance, "rewards");
        AssertClose(output.Baselines!, c.Expected("baselines"), DoubleTolerance, "baselines");
        AssertClose(output.Advantages, c.Expected("token_advantages"), DoubleTolerance, "token_advantages");
    }
}
