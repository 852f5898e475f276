using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

[LossFixtureTests]
public class KlShapedRewardTests
{
    [Fact]
    public void Kl_shaped_reward_matches_openrlhf_compute_reward_fixture()
    {
        using var _ = NewDisposeScope();
        var c = Case("kl_shaped_reward");
        Tensor score = c.Input("score"), kl = c.Input("kl"), mask = c.Input("action_mask");
        AssertClose(KlShapedReward.Compute(score, kl, mask, c.Param("kl_coef")), c.Expected("rewards"), DoubleTolerance, "rewards");
        AssertClose(KlShapedReward.LastValidIndex(mask), c.Expected("last_index"), 0, "last_index");
    }

    [Fact]
    public void Kl_shaped_reward_clamps_the_score_before_adding_it()
    {
        using var _ = NewDisposeScope();
        // Score 5 clipped to 2 at index 1 (the last valid token); the padding keeps −β·kl.
        var score = tensor(new[] { 5.0 }, dtype: ScalarType.Float64);
        var kl = tensor(new[] { 0.2, -0.4, 1.0 }, dtype: ScalarType.Float64).view(1, 3);
        var mask = tensor(new[] { 1.0, 1.0, 0.0 }, dtype: ScalarType.Float64).view(1, 3);
        const double beta = 0.1;
        AssertClose(KlShapedReward.Compute(score, kl, mask, beta, (-2.0, 2.0)),
            new[] { -beta * 0.2, -beta * -0.4 + 2.0, -beta * 1.0 }, DoubleTolerance);
    }
}
