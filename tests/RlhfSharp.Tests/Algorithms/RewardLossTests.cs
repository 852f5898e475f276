using RlhfSharp.Algorithms.Reward;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

[LossFixtureTests]
public class RewardLossTests
{
    [Fact]
    public void Pairwise_loss_matches_openrlhf_fixture()
    {
        using var _ = NewDisposeScope();
        var c = Case("reward_pairwise_loss");
        var (loss, losses) = RewardLoss.Pairwise(c.Input("chosen_reward"), c.Input("reject_reward"));
        AssertClose(losses, c.Expected("losses"), DoubleTolerance, "losses");
        AssertClose(loss, c.Expected("loss").GetDouble(), DoubleTolerance, "loss");
    }

    [Fact]
    public void Pairwise_loss_with_margin_matches_openrlhf_fixture()
    {
        using var _ = NewDisposeScope();
        var c = Case("reward_pairwise_loss_margin");
        var (loss, losses) = RewardLoss.Pairwise(c.Input("chosen_reward"), c.Input("reject_reward"), c.Input("margin"));
        AssertClose(losses, c.Expected("losses"), DoubleTolerance, "losses");
        AssertClose(loss, c.Expected("loss").GetDouble(), DoubleTolerance, "loss");
    }

    [Theory]
    [InlineData("instructgpt_kwise_ranking_K4")]
    [InlineData("instructgpt_kwise_ranking_K5")]
    public void Kwise_ranking_loss_matches_instructgpt_eq1_fixture(string caseName)
    {
        using var _ = NewDisposeScope();
        var c = Case(caseName);
        var scores = c.Input("scores");
        Assert.Equal((long)c.Param("K"), scores.shape[1]);
        var (loss, perPrompt) = RewardLoss.KWiseRanking(scores);
        AssertClose(perPrompt, c.Expected("per_prompt_loss"), DoubleTolerance, "per_prompt_loss");
        AssertClose(loss, c.Expected("loss").GetDouble(), DoubleTolerance, "loss");
    }

    [Fact]
    public void Kwise_ranking_loss_with_K2_is_the_pairwise_loss()
    {
        using var _ = NewDisposeScope();
        var c = Case("reward_pairwise_loss");
        Tensor chosen = c.Input("chosen_reward"), rejected = c.Input("reject_reward");
        var (kwise, _) = RewardLoss.KWiseRanking(stack(new[] { chosen, rejected }, 1));
        AssertClose(kwise, c.Expected("loss").GetDouble(), DoubleTolerance);
    }

    [Fact]
    public void Reward_centering_is_coef_times_mean_squared_sum_of_pair_rewards()
    {
        using var _ = NewDisposeScope();
        // Eisenstein et al. 2023 (arXiv:2312.09244) / TRL reward_trainer.py: coef · mean((r_c + r_r)²).
        double[] rc = [1.0, -0.5, 0.25], rr = [0.2, 0.3, -2.0];
        const double coef = 0.01;
        double expected = coef * ((1.2 * 1.2) + (-0.2 * -0.2) + (-1.75 * -1.75)) / 3;
        AssertClose(RewardLoss.Centering(tensor(rc), tensor(rr), coef), expected, DoubleTolerance);
    }
}
