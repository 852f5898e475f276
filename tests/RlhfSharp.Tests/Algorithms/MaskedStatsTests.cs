using RlhfSharp.Algorithms.Common;
using TorchSharp;
using static TorchSharp.torch;
using static RlhfSharp.Tests.Algorithms.LossFixtures;

namespace RlhfSharp.Tests.Algorithms;

[LossFixtureTests]
public class MaskedStatsTests
{
    [Fact]
    public void Masked_mean_var_and_whiten_match_trl_fixture()
    {
        using var _ = NewDisposeScope();
        var c = Case("masked_whiten");
        Tensor x = c.Input("values"), m = c.Input("mask");
        double eps = c.Param("eps");
        AssertClose(MaskedStats.MaskedMean(x, m), c.Expected("masked_mean").GetDouble(), DoubleTolerance, "masked_mean");
        AssertClose(MaskedStats.MaskedVar(x, m, unbiased: true), c.Expected("masked_var_unbiased").GetDouble(), DoubleTolerance, "var_unbiased");
        AssertClose(MaskedStats.MaskedVar(x, m, unbiased: false), c.Expected("masked_var_biased").GetDouble(), DoubleTolerance, "var_biased");
        AssertClose(MaskedStats.MaskedWhiten(x, m, shiftMean: true, eps), c.Expected("whitened_shift_mean_true"), DoubleTolerance, "shift_mean_true");
        AssertClose(MaskedStats.MaskedWhiten(x, m, shiftMean: false, eps), c.Expected("whitened_shift_mean_false"), DoubleTolerance, "shift_mean_false");
    }

    [Fact]
    public void Masked_mean_along_a_dim_averages_each_row_over_its_valid_tokens()
    {
        using var _ = NewDisposeScope();
        var x = tensor(new[] { 1.0, 2.0, 3.0, 10.0, 20.0, 30.0 }, dtype: ScalarType.Float64).view(2, 3);
        var m = tensor(new[] { 1.0, 1.0, 1.0, 1.0, 0.0, 0.0 }, dtype: ScalarType.Float64).view(2, 3);
        AssertClose(MaskedStats.MaskedMean(x, m, dim: 1), new[] { 2.0, 10.0 }, DoubleTolerance);
        AssertClose(MaskedStats.Reduce(x, m, LossReduction.SequenceMean), 6.0, DoubleTolerance);
        AssertClose(MaskedStats.Reduce(x, m, LossReduction.TokenMean), 16.0 / 4, DoubleTolerance);
    }

    [Fact]
    public void Unbiased_masked_var_of_a_single_valid_entry_throws()
    {
        using var _ = NewDisposeScope();
        var x = tensor(new[] { 1.0, 2.0 }, dtype: ScalarType.Float64);
        var m = tensor(new[] { 1.0, 0.0 }, dtype: ScalarType.Float64);
        Assert.Throws<ArgumentException>(() => MaskedStats.MaskedVar(x, m));
    }
}
