using RlhfSharp.Algorithms.Common;
using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

[LossFixtureTests]
public class PpoLossTests
{
    static void CheckPolicy(ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var c = Case("ppo_policy_loss_clip0.2");
        double tol = LossCase.Tolerance(dtype), eps = c.Param("clip_eps");
        Tensor logp = c.Input("log_probs", dtype), old = c.Input("old_log_probs", dtype), adv = c.Input("advantages", dtype), mask = c.Input("action_mask", dtype);

        var token = PpoLoss.Policy(logp, old, adv, mask, eps, LossReduction.TokenMean);
        AssertClose(token.PerTokenLoss, c.Expected("per_token_loss"), tol, "per_token_loss");
        AssertClose(token.Loss, c.Expected("loss_token_mean").GetDouble(), tol, "loss_token_mean");
        AssertClose(token.ClipFraction, c.Expected("clip_frac").GetDouble(), tol, "clip_frac");
        AssertClose(token.Ratio, c.Expected("ratio"), tol, "ratio");

        var seq = PpoLoss.Policy(logp, old, adv, mask, eps, LossReduction.SequenceMean);
        AssertClose(seq.Loss, c.Expected("loss_seq_mean").GetDouble(), tol, "loss_seq_mean");
    }

    static void CheckValue(ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var c = Case("ppo_value_loss_clip0.2");
        double tol = LossCase.Tolerance(dtype), eps = c.Param("clip_eps");
        Tensor v = c.Input("values", dtype), old = c.Input("old_values", dtype), ret = c.Input("returns", dtype), mask = c.Input("action_mask", dtype);

        var token = PpoLoss.Value(v, old, ret, mask, eps, LossReduction.TokenMean);
        AssertClose(token.PerTokenLoss, c.Expected("per_token_loss"), tol, "per_token_loss");
        AssertClose(token.Loss, c.Expected("loss_token_mean").GetDouble(), tol, "loss_token_mean");
        AssertClose(token.ClipFraction, c.Expected("clip_frac").GetDouble(), tol, "clip_frac");
        AssertClose(PpoLoss.Value(v, old, ret, mask, eps, LossReduction.SequenceMean).Loss, c.Expected("loss_seq_mean").GetDouble(), tol, "loss_seq_mean");
        var unclipped = PpoLoss.Value(v, old, ret, mask, clipEps: null);
        AssertClose(unclipped.Loss, c.Expected("unclipped_token_mean").GetDouble(), tol, "unclipped_token_mean");
        AssertClose(unclipped.ClipFraction, 0.0, tol, "unclipped clip_frac");
    }

    [Fact] public void Policy_loss_matches_openrlhf_fixture_clip02() => CheckPolicy(ScalarType.Float64);
    [Fact] public void Policy_loss_float32_matches_openrlhf_fixture_clip02() => CheckPolicy(ScalarType.Float32);
    [Fact] public void Value_loss_matches_openrlhf_fixture_clip02() => CheckValue(ScalarType.Float64);
    [Fact] public void Value_loss_float32_matches_openrlhf_fixture_clip02() => CheckValue(ScalarType.Float32);

    [Fact]
    public void Policy_approx_kl_is_masked_mean_of_old_minus_new_logprobs()
    {
        using var _ = NewDisposeScope();
        var c = Case("ppo_policy_loss_clip0.2");
        Tensor logp = c.Input("log_probs"), old = c.Input("old_log_probs"), mask = c.Input("action_mask");
        double[] lp = ToArray(logp), op = ToArray(old), m = ToArray(mask);
        double num = 0, den = 0;
        for (int i = 0; i < lp.Length; i++) { num += (op[i] - lp[i]) * m[i]; den += m[i]; }
        AssertClose(PpoLoss.Policy(logp, old, c.Input("advantages"), mask).ApproxKl, num / den, DoubleTolerance);
    }

    [Fact]
    public void Policy_loss_gradient_flows_only_through_unclipped_tokens()
    {
        using var _ = NewDisposeScope();
        // ratio = e^{0.5} > 1.2 with A > 0 is clipped (no gradient); ratio = 1 is not.
        var logp = tensor(new[] { 0.5, 0.0 }, dtype: ScalarType.Float64).view(1, 2).requires_grad_();
        var old = zeros(1, 2, dtype: ScalarType.Float64);
        var adv = ones(1, 2, dtype: ScalarType.Float64);
        PpoLoss.Policy(logp, old, adv, ones(1, 2, dtype: ScalarType.Float64)).Loss.backward();
        AssertClose(logp.grad!, new[] { 0.0, -0.5 }, DoubleTolerance); // d/dlogp of −mean(ratio·A) at ratio 1 is −1/2
    }

    internal static double[] ToArray(Tensor t) => t.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
}
