using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

[LossFixtureTests]
public class KlEstimatorTests
{
    [Theory]
    [InlineData(KlEstimatorKind.K1, "k1")]
    [InlineData(KlEstimatorKind.K2, "k2")]
    [InlineData(KlEstimatorKind.K3, "k3")]
    public void Kl_estimator_matches_openrlhf_fixture_per_token_and_token_mean(KlEstimatorKind kind, string key)
    {
        using var _ = NewDisposeScope();
        var c = Case("kl_estimators");
        Tensor logp = c.Input("log_probs"), refLogp = c.Input("ref_log_probs"), mask = c.Input("action_mask");
        AssertClose(KlEstimator.PerToken(logp, refLogp, kind), c.Expected(key), DoubleTolerance, key);
        AssertClose(KlEstimator.TokenMean(logp, refLogp, mask, kind), c.Expected(key + "_token_mean").GetDouble(), DoubleTolerance, key + "_token_mean");
    }

    [Fact]
    public void Kl_estimator_clamps_to_ten_like_openrlhf()
    {
        using var _ = NewDisposeScope();
        var logp = tensor(new[] { -30.0, 0.0 }, dtype: ScalarType.Float64);
        var refLogp = tensor(new[] { 0.0, -30.0 }, dtype: ScalarType.Float64);
        AssertClose(KlEstimator.PerToken(logp, refLogp, KlEstimatorKind.K1), new[] { -10.0, 10.0 }, DoubleTolerance);
        AssertClose(KlEstimator.PerToken(logp, refLogp, KlEstimatorKind.K1, clampAbs: null), new[] { -30.0, 30.0 }, DoubleTolerance);
    }
}
