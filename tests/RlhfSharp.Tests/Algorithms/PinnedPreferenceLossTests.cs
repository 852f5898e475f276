using RlhfSharp.Algorithms.Common;
using RlhfSharp.Algorithms.Preference;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>SimPO, ORPO, KTO and TRL's length-normalised IPO against fixtures/losses/pinned.json (generate_pinned.py, TRL f2cd577).</summary>
[LossFixtureTests]
public class PinnedPreferenceLossTests
{
    static void CheckPairOutput(LossCase c, PreferenceLossOutput output, double tol)
    {
        AssertClose(output.Losses, c.Expected("losses"), tol, "losses");
        AssertClose(output.Loss, c.Expected("loss").GetDouble(), tol, "loss");
        AssertClose(output.ChosenRewards, c.Expected("chosen_rewards"), tol, "chosen_rewards");
        AssertClose(output.RejectedRewards, c.Expected("rejected_rewards"), tol, "rejected_rewards");
    }

    [Theory]
    [InlineData("simpo_beta2.0_gamma0.5_label_smoothing0.0")]
    [InlineData("simpo_beta0.1_gamma0.5_label_smoothing0.1")]
    public void Simpo_matches_trl_cpo_simpo_loss(string name)
    {
        using var _ = NewDisposeScope();
        var c = Case(name);
        var output = SimpoLoss.Compute(c.Input("policy_chosen_logps"), c.Input("policy_rejected_logps"),
            c.Param("beta"), c.Param("gamma"), c.Param("label_smoothing"));
        CheckPairOutput(c, output, DoubleTolerance);
    }

    [Fact]
    public void Orpo_matches_trl_odds_ratio_loss_and_log1mexp()
    {
        using var _ = NewDisposeScope();
        var c = Case("orpo_beta0.1");
        var output = OrpoLoss.Compute(c.Input("policy_chosen_logps"), c.Input("policy_rejected_logps"), c.Input("chosen_nll"), c.Param("beta"));
        AssertClose(output.LogOdds, c.Expected("log_odds"), DoubleTolerance, "log_odds");
        AssertClose(output.OddsRatioLosses, c.Expected("losses"), DoubleTolerance, "losses");
        AssertClose(output.Loss, c.Expected("loss").GetDouble(), DoubleTolerance, "loss");
        AssertClose(output.ChosenRewards, c.Expected("chosen_rewards"), DoubleTolerance, "chosen_rewards");
        AssertClose(output.RejectedRewards, c.Expected("rejected_rewards"), DoubleTolerance, "rejected_rewards");
        AssertClose(OrpoLoss.Log1mExp(c.Input("log1mexp_x")), c.Expected("log1mexp"), DoubleTolerance, "log1mexp");
    }

    [Theory]
    [InlineData("kto_beta0.1_undesirable1.33")]
    [InlineData("kto_reference_point_clamped_beta0.1")]
    public void Kto_matches_trl_kto_loss_and_reference_point(string name)
    {
        using var _ = NewDisposeScope();
        var c = Case(name);
        var kl = KtoLoss.ReferencePoint(c.Input("policy_kl_logps"), c.Input("reference_kl_logps"));
        AssertClose(kl, c.Expected("kl").GetDouble(), DoubleTolerance, "kl");
        var output = KtoLoss.Compute(c.Input("policy_chosen_logps"), c.Input("reference_chosen_logps"),
            c.Input("policy_rejected_logps"), c.Input("reference_rejected_logps"), kl,
            c.Param("beta"), c.Param("desirable_weight"), c.Param("undesirable_weight"));
        AssertClose(output.Losses, c.Expected("losses"), DoubleTolerance, "losses");
        AssertClose(output.Loss, c.Expected("loss").GetDouble(), DoubleTolerance, "loss");
        AssertClose(output.ChosenRewards, c.Expected("chosen_rewards"), DoubleTolerance, "chosen_rewards");
        AssertClose(output.RejectedRewards, c.Expected("rejected_rewards"), DoubleTolerance, "rejected_rewards");
    }

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void Ipo_length_normalised_matches_trl_ipo(ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var c = Case("ipo_length_normalised_beta0.1");
        var output = DpoLoss.IpoLengthNormalised(c.Input("policy_chosen_logps", dtype), c.Input("policy_rejected_logps", dtype),
            c.Input("reference_chosen_logps", dtype), c.Input("reference_rejected_logps", dtype),
            c.Input("chosen_lengths", dtype), c.Input("rejected_lengths", dtype), c.Param("beta"));
        CheckPairOutput(c, output, LossCase.Tolerance(dtype));
    }
}
