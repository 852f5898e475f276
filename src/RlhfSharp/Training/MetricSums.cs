using RlhfSharp.Distributed;

namespace RlhfSharp.Training;

/// <summary>
/// Example-weighted means of micro-batch diagnostics over a step or an evaluation; a NaN (an empty KTO side) does not
/// count. <paramref name="names"/> lists every metric the stage can log, so the ranks all-reduce the same numbers in the
/// same order (<see cref="AcrossRanks"/>).
/// </summary>
public sealed class MetricSums(IReadOnlyList<string> names)
{
    readonly Dictionary<string, (double Sum, double Weight)> sums = [];
    public IEnumerable<string> Keys => sums.Keys;

    public void Add(IReadOnlyDictionary<string, double> metrics, int weight)
    {
        foreach (var (k, v) in metrics)
        {
            var (s, w) = sums.GetValueOrDefault(k);
            sums[k] = double.IsFinite(v) ? (s + v * weight, w + weight) : (s, w);
        }
    }

    public double Mean(string key) => sums.TryGetValue(key, out var sw) && sw.Weight > 0 ? sw.Sum / sw.Weight : double.NaN;

    /// <summary>The sums over every rank (this object itself in one process). A rank with an empty shard adds nothing.</summary>
    public MetricSums AcrossRanks()
    {
        if (DataParallel.World is null) return this;
        if (sums.Keys.Except(names).FirstOrDefault() is string unknown) throw new InvalidOperationException($"metric '{unknown}' is missing from the stage's metric names.");
        var flat = DataParallel.Sum(names.SelectMany(n => sums.TryGetValue(n, out var sw) ? new[] { sw.Sum, sw.Weight, 1.0 } : [0, 0, 0]).ToArray());
        var result = new MetricSums(names);
        for (int i = 0; i < names.Count; i++)
            if (flat[3 * i + 2] > 0) result.sums[names[i]] = (flat[3 * i], flat[3 * i + 1]);
        return result;
    }
}
