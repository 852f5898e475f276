using RlhfSharp.Algorithms.A2c;
using RlhfSharp.Algorithms.Nlpo;
using RlhfSharp.Algorithms.Ppo;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// NLPO's top-p action mask and masked PPO loss, and A2C's losses, against fixtures/losses/pinned.json
/// (generate_pinned.py, written from allenai/RL4LMs@97df0bd: logits_processor.py, distributions.py, nlpo.py, a2c.py).
/// </summary>
[LossFixtureTests]
public class PinnedNlpoA2cTests
{
    [Theory]
    [InlineData("nlpo_learned_top_p_mask_0.9_min3", ScalarType.Float64)]
    [InlineData("nlpo_learned_top_p_mask_0.9_min3", ScalarType.Float32)]
    [InlineData("nlpo_learned_top_p_mask_0.5_min1", ScalarType.Float32)]
    public void Top_p_mask_matches_rl4lms_learned_top_p(string name, ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var c = Case(name);
        var allowed = TopPMask.Allowed(c.Input("logits", dtype), c.Param("top_mask"), (int)c.Param("min_tokens_to_keep"), c.IntListParam("special_ids"));
        Assert.Equal(ScalarType.Bool, allowed.dtype);
        AssertClose(allowed.to(ScalarType.Float64), c.Expected("allowed"), 0, "allowed");
    }

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void Masked_logprobs_entropy_and_clipped_loss_match_rl4lms_maskable_categorical(ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var c = Case("nlpo_masked_policy_loss_clip0.2");
        var allowed = c.Input("allowed").gt(0.5);
        var ids = c.Input("response_ids", ScalarType.Int64);
        var logits = c.Input("new_logits", dtype);
        // MaskedActionSpace works in float32 (as TokenLogprobs): the float tolerance applies to both input dtypes.
        double tol = FloatTolerance;
        var logprobs = MaskedActionSpace.Logprobs(logits, ids, allowed);
        var old = MaskedActionSpace.Logprobs(c.Input("old_logits", dtype), ids, allowed);
        AssertClose(logprobs, c.Expected("masked_logprobs"), tol, "masked_logprobs");
        AssertClose(old, c.Expected("old_masked_logprobs"), tol, "old_masked_logprobs");
        AssertClose(MaskedActionSpace.Entropy(logits, allowed), c.Expected("masked_entropy"), tol, "masked_entropy");
        // The KL penalty's log-probs: the unmasked distribution's (TokenLogprobs on logits shifted by one position).
        var raw = logits.to(ScalarType.Float32).log_softmax(-1).gather(2, ids.unsqueeze(-1)).squeeze(-1);
        AssertClose(raw, c.Expected("raw_logprobs"), tol, "raw_logprobs");
        var loss = PpoLoss.Policy(logprobs.to(ScalarType.Float64), old.to(ScalarType.Float64), c.Input("advantages"), c.Input("action_mask"), c.Param("clip_eps"));
        AssertClose(loss.PerTokenLoss, c.Expected("per_token_loss"), tol, "per_token_loss");
        AssertClose(loss.Loss, c.Expected("loss_token_mean").GetDouble(), tol, "loss_token_mean");
    }

    /// <summary>
    /// RL4LMs' masked log-prob is <c>log(clamp(p, eps, 1 − eps))</c> of the unmasked float32 softmax: a near-certain token gets
    /// log(1 − 2⁻²³), an allowed token below eps and a forbidden one get log 2⁻²³ (probs_to_logits of the masked probabilities).
    /// </summary>
    [Fact]
    public void Masked_logprobs_are_clamped_to_float32_eps_as_rl4lms_probs_to_logits()
    {
        using var _ = NewDisposeScope();
        var c = Case("nlpo_masked_logprobs_float32_clamp");
        var logits = c.Input("logits", ScalarType.Float32);
        var allowed = c.Input("allowed").gt(0.5);
        var ids = c.Input("response_ids", ScalarType.Int64);
        AssertClose(MaskedActionSpace.Logprobs(logits, ids, allowed), c.Expected("masked_logprobs"), FloatTolerance, "masked_logprobs");
        long v = logits.shape[2];
        // Every token of the vocabulary as the response token, one call each: (B, 1) per id → (B, 1, V).
        var all = stack(Enumerable.Range(0, (int)v).Select(i => MaskedActionSpace.Logprobs(logits, full_like(ids, i), allowed)).ToArray(), -1);
        AssertClose(all, c.Expected("all_masked_logprobs"), FloatTolerance, "all_masked_logprobs");
        AssertClose(MaskedActionSpace.Entropy(logits, allowed), c.Expected("masked_entropy"), FloatTolerance, "masked_entropy");
    }

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void A2c_losses_match_rl4lms_a2c_train(ScalarType dtype)
    {
        using var _ = NewDisposeScope();
        var c = Case("a2c_losses_vf_coef0.5");
        double tol = LossCase.Tolerance(dtype);
        var logprobs = c.Input("logprobs", dtype);
        var mask = c.Input("action_mask", dtype);
        var policy = A2cLoss.Policy(logprobs, logprobs.detach(), c.Input("advantages", dtype), mask);
        var value = A2cLoss.Value(c.Input("values", dtype), c.Input("returns", dtype), mask);
        AssertClose(policy.PerTokenLoss, c.Expected("per_token_policy_loss"), tol, "per_token_policy_loss");
        AssertClose(policy.Loss, c.Expected("policy_loss").GetDouble(), tol, "policy_loss");
        AssertClose(value.Loss, c.Expected("value_loss").GetDouble(), tol, "value_loss");
        // With a value head the trainer adds value_coef·value_loss to the actor's loss (A2cConfig.ValueCoef = SB3's vf_coef).
        var config = new A2cConfig();
        Assert.Equal(c.Param("vf_coef"), config.ValueCoef);
        AssertClose(policy.Loss + config.ValueCoef * value.Loss, c.Expected("loss").GetDouble(), tol, "loss");
    }
}
