using RlhfSharp.Algorithms.Common;
using static TorchSharp.torch;

namespace RlhfSharp.Distributed;

/// <summary>
/// Batch statistics that one process takes over its whole rollout batch, taken over every rank's rows under mpirun
/// (sums all-reduced, then the same formula), so whitening sees the global batch as in one process.
/// In one process they are the single-process functions themselves.
/// </summary>
public static class AcrossRanks
{
    /// <summary><see cref="MaskedStats.MaskedWhiten"/> (unbiased variance, TRL/PPO) with the mean and variance of every rank's valid entries.</summary>
    public static Tensor MaskedWhiten(Tensor values, Tensor mask, double eps = 1e-8)
    {
        if (DataParallel.World is null) return MaskedStats.MaskedWhiten(values, mask, eps: eps);
        var (mean, n) = Mean(values, mask);
        double variance = DataParallel.Sum(((values - mean).square() * mask).sum().to(ScalarType.Float64).item<double>())[0] / n;
        if (n < 2) throw new ArgumentException($"The unbiased masked variance needs at least 2 valid entries; the mask sums to {n} over every rank.", nameof(mask));
        variance *= n / (n - 1);
        return (values - mean) * (1.0 / Math.Sqrt(variance + eps));
    }

    /// <summary>REINFORCE++'s global whitening (biased variance, clamped at 1e-8) over every rank's valid entries; under mpirun only.</summary>
    public static Tensor GlobalWhiten(Tensor values, Tensor mask, bool divideByStd)
    {
        var (mean, n) = Mean(values, mask);
        if (!divideByStd) return values - mean;
        double variance = DataParallel.Sum(((values - mean).square() * mask).sum().to(ScalarType.Float64).item<double>())[0] / n;
        return (values - mean) * (1.0 / Math.Sqrt(Math.Max(variance, 1e-8)));
    }

    /// <summary>The unbiased std of every rank's entries of the 1-D <paramref name="values"/> (two passes, in float64).</summary>
    public static double Std(Tensor values)
    {
        using var scope = NewDisposeScope();
        var all = ones_like(values);
        var (mean, n) = Mean(values, all);
        if (n < 2) throw new ArgumentException($"The unbiased std needs at least 2 entries; every rank holds {n} together.", nameof(values));
        double squares = DataParallel.Sum((values.to(ScalarType.Float64) - mean).square().sum().item<double>())[0];
        return Math.Sqrt(squares / (n - 1));
    }

    /// <summary>Σ mask over every rank (the valid-entry count of the global batch).</summary>
    public static double Count(Tensor mask) => DataParallel.Sum(mask.sum().to(ScalarType.Float64).item<double>())[0];

    static (double Mean, double Count) Mean(Tensor values, Tensor mask)
    {
        var s = DataParallel.Sum((values * mask).sum().to(ScalarType.Float64).item<double>(), mask.sum().to(ScalarType.Float64).item<double>());
        return (s[0] / Math.Max(1, s[1]), s[1]);
    }
}
