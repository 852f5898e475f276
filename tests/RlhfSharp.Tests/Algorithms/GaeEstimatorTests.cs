using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

[LossFixtureTests]
public class GaeEstimatorTests
{
    static void Check(string caseName, ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var c = Case(caseName);
        var (advantages, returns) = GaeEstimator.Compute(
            c.Input("values", dtype), c.Input("rewards", dtype), c.Input("action_mask", dtype), c.Param("gamma"), c.Param("lam"));
        Assert.Equal(dtype, advantages.dtype);
        AssertClose(advantages, c.Expected("advantages"), LossCase.Tolerance(dtype), "advantages");
        AssertClose(returns, c.Expected("returns"), LossCase.Tolerance(dtype), "returns");
    }

    [Fact] public void Gae_matches_openrlhf_fixture_gamma1_lam095() => Check("gae_gamma1.0_lam0.95", ScalarType.Float64);
    [Fact] public void Gae_matches_openrlhf_fixture_gamma099_lam09() => Check("gae_gamma0.99_lam0.9", ScalarType.Float64);
    [Fact] public void Gae_float32_matches_openrlhf_fixture_gamma1_lam095() => Check("gae_gamma1.0_lam0.95", ScalarType.Float32);
    [Fact] public void Gae_float32_matches_openrlhf_fixture_gamma099_lam09() => Check("gae_gamma0.99_lam0.9", ScalarType.Float32);

    [Fact]
    public void Gae_with_lambda1_gives_discounted_return_minus_value()
    {
        using var _ = NewDisposeScope();
        // λ = 1: A_t = Σ_k γ^k r_{t+k} − V_t (Schulman et al. 2016, Eq. 18); returns are the discounted returns.
        double[] r = [0.5, -1.0, 2.0], v = [0.1, 0.2, 0.3];
        const double gamma = 0.9;
        var (adv, ret) = GaeEstimator.Compute(tensor(v).view(1, 3), tensor(r).view(1, 3), ones(1, 3, dtype: ScalarType.Float64), gamma, 1.0);
        double g2 = r[2], g1 = r[1] + gamma * g2, g0 = r[0] + gamma * g1;
        AssertClose(ret, new[] { g0, g1, g2 }, DoubleTolerance);
        AssertClose(adv, new[] { g0 - v[0], g1 - v[1], g2 - v[2] }, DoubleTolerance);
    }
}
