namespace RlhfSharp.Tests.Algorithms;

public class FixtureCoverageTests
{
    /// <summary>Every case in losses.json, each with at least one test in this folder that runs it.</summary>
    internal static readonly string[] Covered =
    [
        "gae_gamma1.0_lam0.95", "gae_gamma0.99_lam0.9",
        "ppo_policy_loss_clip0.2", "ppo_value_loss_clip0.2",
        "kl_estimators", "kl_shaped_reward", "masked_whiten",
        "dpo_sigmoid_beta0.1", "cdpo_label_smoothing0.1_beta0.1", "ipo_beta0.1",
        "reward_pairwise_loss", "reward_pairwise_loss_margin",
        "grpo_group_advantages_G4", "rloo_leave_one_out_G4",
        "instructgpt_kwise_ranking_K4", "instructgpt_kwise_ranking_K5",
    ];

    [Fact]
    public void Every_losses_fixture_case_has_a_test()
        => Assert.Equal(LossFixtures.CaseNames.OrderBy(n => n), Covered.OrderBy(n => n));
}
