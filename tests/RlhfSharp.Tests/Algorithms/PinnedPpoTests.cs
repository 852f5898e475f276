using RlhfSharp.Algorithms.Common;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// The asymmetric clip, the adaptive KL controller, SFT's masked NLL, PPO-ptx and the entropy against
/// fixtures/losses/pinned.json (generate_pinned.py: OpenRLHF 3c3be62, and 64c6350 for PPO-ptx).
/// </summary>
[LossFixtureTests]
public class PinnedPpoTests
{
    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void Clip_higher_policy_loss_matches_openrlhf_policy_loss(ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var c = Case("ppo_policy_loss_clip_higher_0.2_0.28");
        double tol = LossCase.Tolerance(dtype);
        var output = PpoLoss.Policy(c.Input("logprobs", dtype), c.Input("old_logprobs", dtype), c.Input("advantages", dtype),
            c.Input("action_mask", dtype), c.Param("clip_eps_low"), clipEpsHigh: c.Param("clip_eps_high"));
        AssertClose(output.PerTokenLoss, c.Expected("per_token_loss"), tol, "per_token_loss");
        AssertClose(output.Loss, c.Expected("loss_token_mean").GetDouble(), tol, "loss_token_mean");
        AssertClose(output.ClipFraction, c.Expected("clip_frac").GetDouble(), tol, "clip_frac");
        AssertClose(output.Ratio, c.Expected("ratio"), tol, "ratio");
    }

    [Fact]
    public void Adaptive_kl_controller_matches_openrlhf_adaptive_kl_controller()
    {
        var c = Case("adaptive_kl_controller_target6_horizon10000");
        var controller = new KlController(c.Param("init_kl_coef"), c.Param("target"), (int)c.Param("horizon"));
        var kl = Doubles(c, "observed_kl");
        var steps = Doubles(c, "n_steps");
        var values = new double[kl.Length];
        for (int i = 0; i < kl.Length; i++)
        {
            controller.Update(kl[i], (int)steps[i]);
            values[i] = controller.Coef;
        }
        AssertClose(values, Flatten(c.Expected("values")).Data, DoubleTolerance, "values");
    }

    static double[] Doubles(LossCase c, string input)
    {
        using var t = c.Input(input);
        return t.data<double>().ToArray();
    }

    [Fact]
    public void Sft_masked_nll_matches_openrlhf_gpt_lm_loss()
    {
        using var _ = NewDisposeScope();
        var c = Case("sft_masked_nll");
        var ids = c.Input("input_ids", ScalarType.Int64);
        // SftTrainer: TokenLogprobs.Of, then the loss mask shifted by one (a position's mask says whether its token is predicted).
        var logprobs = TokenLogprobs.Of(c.Input("logits"), ids);
        var lossMask = c.Input("loss_mask");
        var mask = lossMask.narrow(1, 1, lossMask.shape[1] - 1);
        AssertClose(logprobs, c.Expected("token_logprobs"), FloatTolerance, "token_logprobs");
        AssertClose(-(logprobs.to(ScalarType.Float64) * mask).sum() / mask.sum(), c.Expected("nll_token_mean").GetDouble(), FloatTolerance, "nll_token_mean");
    }

    [Fact]
    public void Ppo_ptx_actor_loss_matches_openrlhf_policy_plus_ptx_coef_times_lm_loss()
    {
        using var _ = NewDisposeScope();
        var c = Case("ppo_ptx_coef0.05");
        var policy = PpoLoss.Policy(c.Input("logprobs"), c.Input("old_logprobs"), c.Input("advantages"), c.Input("action_mask"),
            c.Param("clip_eps"), clipEpsHigh: c.Param("clip_eps_high")).Loss;
        AssertClose(policy, c.Expected("policy_loss").GetDouble(), DoubleTolerance, "policy_loss");
        // PpoTrainer.TrainMinibatch: ptxLoss = −Σ logp·m / Σ m over the drawn batch; actorLoss = policy + PtxCoef·ptxLoss.
        var lp = TokenLogprobs.Of(c.Input("ptx_logits"), c.Input("ptx_input_ids", ScalarType.Int64)).to(ScalarType.Float64);
        var lossMask = c.Input("ptx_loss_mask");
        var lm = lossMask.narrow(1, 1, lossMask.shape[1] - 1);
        var ptx = -(lp * lm).sum() / lm.sum();
        AssertClose(ptx, c.Expected("ptx_loss").GetDouble(), FloatTolerance, "ptx_loss");
        AssertClose(policy + c.Param("ptx_coef") * ptx, c.Expected("actor_loss").GetDouble(), FloatTolerance, "actor_loss");
    }

    [Fact]
    public void Entropy_matches_openrlhf_compute_entropy_and_its_token_mean()
    {
        using var _ = NewDisposeScope();
        var c = Case("entropy_token_mean");
        var mask = c.Input("action_mask");
        // PpoTrainer and GroupRlTrainer: TokenLogprobs.Entropy at the predicting positions, masked token mean.
        var entropy = TokenLogprobs.Entropy(c.Input("logits"));
        AssertClose(entropy, c.Expected("per_token_entropy"), FloatTolerance, "per_token_entropy");
        AssertClose(MaskedStats.MaskedMean(entropy.to(ScalarType.Float64), mask), c.Expected("entropy_token_mean").GetDouble(), FloatTolerance, "entropy_token_mean");
    }
}
