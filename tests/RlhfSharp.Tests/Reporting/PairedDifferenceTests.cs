using RlhfSharp.Reporting;

namespace RlhfSharp.Tests.Reporting;

/// <summary>Gold of one policy minus another's, paired by prompt, with the marginal intervals' normal approximation.</summary>
public sealed class PairedDifferenceTests
{
    [Fact]
    public void Mean_interval_and_counts_are_those_of_the_per_prompt_differences()
    {
        // Differences 2, 0, 0, 3: mean 1.25, sample sd 1.5 (squares 0.5625 + 1.5625 + 1.5625 + 3.0625 = 6.75, / 3 = 2.25),
        // half-width 1.96 · 1.5 / √4 = 1.47.
        var d = PairedDifference.Compute([3, 1, 2, 5], [1, 1, 2, 2]);
        Assert.Equal(1.25, d.Mean, 12);
        Assert.Equal(1.25 - 1.47, d.Ci95[0], 12);
        Assert.Equal(1.25 + 1.47, d.Ci95[1], 12);
        Assert.Equal((4, 2, 0, 2), (d.Prompts, d.Wins, d.Losses, d.Ties));
    }

    [Fact]
    public void A_shared_prompt_effect_cancels_in_the_pair_though_the_marginal_intervals_overlap()
    {
        // B is A lowered by 0.1 on every prompt, with a prompt effect of spread 1: the marginal intervals overlap widely,
        // the paired one is the point 0.1.
        double[] a = [1.0, 3.0, 2.0, 0.5, 2.5], b = a.Select(x => x - 0.1).ToArray();
        var (_, ciA) = PolicyScore.MeanAndCi(a);
        var (_, ciB) = PolicyScore.MeanAndCi(b);
        Assert.True(ciB[1] > ciA[0]);
        var d = PairedDifference.Compute(a, b);
        Assert.Equal(0.1, d.Mean, 12);
        Assert.Equal(0.1, d.Ci95[0], 9);
        Assert.Equal(5, d.Wins);
    }

    [Fact]
    public void Unpaired_lengths_are_refused() =>
        Assert.Throws<ArgumentException>(() => PairedDifference.Compute([1, 2], [1]));
}
