using RlhfSharp.Algorithms.Preference;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>ORPO, SimPO and KTO have no fixture: each is checked against the source formula evaluated here in plain double arithmetic.</summary>
public class PreferenceLossHandTests
{
    static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));
    static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    // Length-averaged log-probs (ORPO and SimPO average per token); −0.3 exercises log1mexp's expm1 branch (x > −ln 2).
    static readonly double[] Chosen = [-0.5, -1.2, -0.3, -2.5];
    static readonly double[] Rejected = [-0.9, -0.4, -2.0, -0.6];

    [Fact]
    public void Orpo_loss_matches_trl_odds_ratio_loss_by_hand()
    {
        using var _ = NewDisposeScope();
        // trl/experimental/orpo/orpo_trainer.py odds_ratio_loss + get_batch_loss_metrics (loss = nll − mean(β·logσ(log_odds))).
        const double beta = 0.1, nll = 1.7;
        var logOdds = Chosen.Zip(Rejected, (c, r) => (c - r) - (Math.Log(1 - Math.Exp(c)) - Math.Log(1 - Math.Exp(r)))).ToArray();
        var losses = logOdds.Select(z => -beta * LogSigmoid(z)).ToArray();
        var output = OrpoLoss.Compute(tensor(Chosen), tensor(Rejected), tensor(nll, ScalarType.Float64), beta);
        AssertClose(output.LogOdds, logOdds, DoubleTolerance, "log_odds");
        AssertClose(output.OddsRatioLosses, losses, DoubleTolerance, "losses");
        AssertClose(output.Loss, nll + losses.Average(), DoubleTolerance, "loss");
        AssertClose(output.ChosenRewards, Chosen.Select(c => beta * c).ToArray(), DoubleTolerance, "chosen_rewards");
        AssertClose(output.RejectedRewards, Rejected.Select(r => beta * r).ToArray(), DoubleTolerance, "rejected_rewards");
    }

    [Fact]
    public void Log1mexp_stays_accurate_next_to_zero()
    {
        using var _ = NewDisposeScope();
        // log(1 − e^x) for x = −1e−10 is log(1e−10 − 5e−21 + …); the naive log1p(−exp(x)) loses ~7 digits here.
        double x = -1e-10, expected = Math.Log(1e-10) + Math.Log(1 - 5e-11);
        AssertClose(OrpoLoss.Log1mExp(tensor(new[] { x })), new[] { expected }, 1e-12);
    }

    [Theory]
    [InlineData(2.0, 0.5, 0.0)]
    [InlineData(0.1, 0.5, 0.1)]
    public void Simpo_loss_matches_trl_cpo_simpo_by_hand(double beta, double gamma, double labelSmoothing)
    {
        using var _ = NewDisposeScope();
        // trl/experimental/cpo/cpo_trainer.py cpo_loss, loss_type='simpo': logits = Δ − γ/β; −(1−ε)logσ(β·logits) − ε·logσ(−β·logits).
        var losses = Chosen.Zip(Rejected, (c, r) =>
        {
            double z = beta * ((c - r) - gamma / beta);
            return -(1 - labelSmoothing) * LogSigmoid(z) - labelSmoothing * LogSigmoid(-z);
        }).ToArray();
        var output = SimpoLoss.Compute(tensor(Chosen), tensor(Rejected), beta, gamma, labelSmoothing);
        AssertClose(output.Losses, losses, DoubleTolerance, "losses");
        AssertClose(output.Loss, losses.Average(), DoubleTolerance, "loss");
        AssertClose(output.ChosenRewards, Chosen.Select(c => beta * c).ToArray(), DoubleTolerance, "chosen_rewards");
    }

    [Fact]
    public void Kto_loss_matches_trl_kto_loss_by_hand()
    {
        using var _ = NewDisposeScope();
        // trl/trainer/kto_trainer.py, loss_type='kto': z = max(0, mean(KL_logps − ref_KL_logps));
        // chosen 1 − σ(β(log r_w − z)), rejected 1 − σ(β(z − log r_l)); loss = mean(cat(λ_D·chosen, λ_U·rejected)).
        const double beta = 0.1, wD = 1.0, wU = 1.33;
        double[] pc = [-20.0, -15.5, -31.0], rc = [-21.0, -15.0, -33.5];
        double[] pl = [-18.0, -40.0], rl = [-17.0, -39.0];
        double[] klP = [-25.0, -30.0, -22.0], klR = [-27.0, -29.5, -22.5];
        double z = Math.Max(0, klP.Zip(klR, (a, b) => a - b).Average());
        Assert.True(z > 0);
        var expected = pc.Zip(rc, (p, r) => wD * (1 - Sigmoid(beta * (p - r - z))))
            .Concat(pl.Zip(rl, (p, r) => wU * (1 - Sigmoid(beta * (z - (p - r)))))).ToArray();

        var kl = KtoLoss.ReferencePoint(tensor(klP), tensor(klR));
        AssertClose(kl, z, DoubleTolerance, "kl");
        var output = KtoLoss.Compute(tensor(pc), tensor(rc), tensor(pl), tensor(rl), kl, beta, wD, wU);
        AssertClose(output.Losses, expected, DoubleTolerance, "losses");
        AssertClose(output.Loss, expected.Average(), DoubleTolerance, "loss");
        AssertClose(output.ChosenRewards, pc.Zip(rc, (p, r) => beta * (p - r)).ToArray(), DoubleTolerance, "chosen_rewards");
        AssertClose(output.RejectedRewards, pl.Zip(rl, (p, r) => beta * (p - r)).ToArray(), DoubleTolerance, "rejected_rewards");
    }

    [Fact]
    public void Kto_reference_point_is_clamped_at_zero()
    {
        using var _ = NewDisposeScope();
        AssertClose(KtoLoss.ReferencePoint(tensor(new[] { -5.0, -6.0 }), tensor(new[] { -4.0, -4.5 })), 0.0, DoubleTolerance);
    }

    [Fact]
    public void Kto_loss_accepts_a_batch_with_only_desirable_examples()
    {
        using var _ = NewDisposeScope();
        var empty = zeros(0, dtype: ScalarType.Float64);
        var output = KtoLoss.Compute(tensor(new[] { -1.0 }), tensor(new[] { -2.0 }), empty, empty, tensor(0.0, ScalarType.Float64));
        AssertClose(output.Loss, 1 - Sigmoid(0.1 * 1.0), DoubleTolerance);
    }

    [Fact]
    public void Kto_loss_skips_nan_losses_like_trl_nanmean()
    {
        using var _ = NewDisposeScope();
        var output = KtoLoss.Compute(tensor(new[] { -1.0, double.NaN }), tensor(new[] { -2.0, -2.0 }),
            tensor(new[] { -3.0 }), tensor(new[] { -2.0 }), tensor(0.0, ScalarType.Float64));
        AssertClose(output.Loss, ((1 - Sigmoid(0.1 * 1.0)) + (1 - Sigmoid(0.1 * 1.0))) / 2, DoubleTolerance);
    }
}
