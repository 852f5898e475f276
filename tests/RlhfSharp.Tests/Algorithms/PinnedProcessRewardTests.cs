using RlhfSharp.Algorithms.ProcessReward;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// The process reward model's loss against fixtures/losses/pinned.json (generate_pinned.py: PyTorch 1.13's cross_entropy
/// with ignore_index −100, and its class-probability form for soft labels, as TRL's PRMTrainer trains a token classifier).
/// </summary>
[LossFixtureTests]
public class PinnedProcessRewardTests
{
    [Theory]
    [InlineData("hard_labels", "hard_loss")]
    [InlineData("soft_labels", "soft_loss")]
    public void Prm_loss_is_cross_entropy_over_the_labelled_step_tokens_only(string labels, string key)
    {
        using var _ = NewDisposeScope();
        var c = Case("prm_token_classification_loss");
        AssertClose(ProcessRewardLoss.Loss(c.Input("logits"), c.Input(labels)), c.Expected(key).GetDouble(), DoubleTolerance, key);
    }

    [Fact]
    public void Step_score_is_the_probability_of_the_good_class()
    {
        using var _ = NewDisposeScope();
        var c = Case("prm_token_classification_loss");
        AssertClose(ProcessRewardLoss.GoodProbability(c.Input("logits")), c.Expected("good_probability"), FloatTolerance, "good_probability");
    }
}
