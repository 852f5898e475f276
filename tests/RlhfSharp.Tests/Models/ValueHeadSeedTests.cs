using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// PPO's new value head drawn from a generator of its own (PpoTrainer): the same numbers the head drew from torch's global
/// generator right after <c>manual_seed</c>, so seeded runs keep their weights, and the global generator neither read
/// nor moved, so a parallel test drawing from it cannot change the head (the cause of a flaky NLPO resume test).
/// </summary>
[Collection(ProcessWideStateCollection.Name)] // compares against, and watches, torch's global generator
public sealed class ValueHeadSeedTests
{
    [Theory]
    [InlineData(64, true, 0L)]
    [InlineData(896, true, 42L)]
    [InlineData(512, false, 7L)]
    public void A_seeded_head_equals_nn_Linear_after_manual_seed_and_leaves_the_global_generator_alone(int hidden, bool bias, long seed)
    {
        manual_seed(seed);
        using var before = new ValueHead(hidden, bias);

        manual_seed(1234);
        using var untouched = rand(8);
        manual_seed(1234);
        using var seeded = new ValueHead(hidden, seed, bias);
        using var after = rand(8);

        Assert.True(before.summary.weight!.equal(seeded.summary.weight!).all().item<bool>());
        Assert.Equal(bias, seeded.summary.bias is not null);
        if (bias) Assert.True(before.summary.bias!.equal(seeded.summary.bias!).all().item<bool>());
        Assert.True(untouched.equal(after).all().item<bool>(), "the seeded head drew from or reseeded the global generator");
        Assert.True(seeded.summary.weight!.requires_grad);
    }
}
