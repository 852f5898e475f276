using RlhfSharp.Algorithms.Common;
using RlhfSharp.Algorithms.Preference;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

[LossFixtureTests]
public class DpoLossTests
{
    static (LossCase Case, Tensor Pc, Tensor Pr, Tensor Rc, Tensor Rr) Inputs(string name, ScalarType dtype)
    {
        var c = Case(name);
        return (c, c.Input("policy_chosen_logps", dtype), c.Input("policy_rejected_logps", dtype),
            c.Input("reference_chosen_logps", dtype), c.Input("reference_rejected_logps", dtype));
    }

    static void CheckSigmoid(string name, ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var (c, pc, pr, rc, rr) = Inputs(name, dtype);
        var output = DpoLoss.Sigmoid(pc, pr, rc, rr, c.Param("beta"), c.Param("label_smoothing"));
        CheckOutput(c, output, LossCase.Tolerance(dtype), rewards: true);
    }

    static void CheckIpo(ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var (c, pc, pr, rc, rr) = Inputs("ipo_beta0.1", dtype);
        CheckOutput(c, DpoLoss.Ipo(pc, pr, rc, rr, c.Param("beta")), LossCase.Tolerance(dtype), rewards: false);
    }

    static void CheckOutput(LossCase c, PreferenceLossOutput output, double tol, bool rewards)
    {
        AssertClose(output.Losses, c.Expected("losses"), tol, "losses");
        AssertClose(output.Loss, c.Expected("loss").GetDouble(), tol, "loss");
        if (rewards) // ipo_beta0.1 has no rewards in the fixture
        {
            AssertClose(output.ChosenRewards, c.Expected("chosen_rewards"), tol, "chosen_rewards");
            AssertClose(output.RejectedRewards, c.Expected("rejected_rewards"), tol, "rejected_rewards");
        }
    }

    [Fact] public void Dpo_sigmoid_matches_openrlhf_fixture_beta01() => CheckSigmoid("dpo_sigmoid_beta0.1", ScalarType.Float64);
    [Fact] public void Dpo_sigmoid_float32_matches_openrlhf_fixture_beta01() => CheckSigmoid("dpo_sigmoid_beta0.1", ScalarType.Float32);
    [Fact] public void Cdpo_matches_openrlhf_fixture_label_smoothing01_beta01() => CheckSigmoid("cdpo_label_smoothing0.1_beta0.1", ScalarType.Float64);
    [Fact] public void Cdpo_float32_matches_openrlhf_fixture_label_smoothing01_beta01() => CheckSigmoid("cdpo_label_smoothing0.1_beta0.1", ScalarType.Float32);
    [Fact] public void Ipo_matches_openrlhf_fixture_beta01() => CheckIpo(ScalarType.Float64);
    [Fact] public void Ipo_float32_matches_openrlhf_fixture_beta01() => CheckIpo(ScalarType.Float32);
}
