namespace RlhfSharp.Labeling;

/// <summary>How far apart two values are for <see cref="KrippendorffAlpha"/>.</summary>
public enum AlphaMetric { Nominal, Ordinal, Interval }

/// <summary>
/// Krippendorff's alpha, the chance-corrected agreement of any number of coders with missing values (Krippendorff
/// 2011, "Computing Krippendorff's Alpha-Reliability", via the coincidence matrix): α = 1 − D_o / D_e with
/// D_o = Σ o_ck δ²(c,k) / n and D_e = Σ n_c n_k δ²(c,k) / (n (n − 1)). 1 is perfect agreement, 0 is chance.
/// </summary>
public static class KrippendorffAlpha
{
    /// <summary>α over <paramref name="units"/>, each the values its coders gave (missing ones left out).</summary>
    /// <returns>NaN when fewer than two values are pairable or every value is the same (no variation to agree on).</returns>
    public static double Compute(IEnumerable<IReadOnlyList<double>> units, AlphaMetric metric)
    {
        var pairable = units.Where(u => u.Count >= 2).ToList();
        var values = pairable.SelectMany(u => u).Distinct().Order().ToArray();
        var index = values.Select((v, i) => (v, i)).ToDictionary(x => x.v, x => x.i);
        int k = values.Length;
        // Coincidences: each ordered pair of values within a unit, weighted 1/(m_u − 1).
        var o = new double[k, k];
        foreach (var u in pairable)
        {
            double w = 1.0 / (u.Count - 1);
            for (int i = 0; i < u.Count; i++)
                for (int j = 0; j < u.Count; j++)
                    if (i != j) o[index[u[i]], index[u[j]]] += w;
        }
        var nc = new double[k];
        for (int c = 0; c < k; c++) for (int d = 0; d < k; d++) nc[c] += o[c, d];
        double n = nc.Sum();
        if (n < 2 || k < 2) return double.NaN;

        double Delta2(int c, int d)
        {
            switch (metric)
            {
                case AlphaMetric.Nominal: return c == d ? 0 : 1;
                case AlphaMetric.Interval: return (values[c] - values[d]) * (values[c] - values[d]);
                default:
                    // Ordinal: the mass of values between c and d, half of each end counted (Krippendorff 2011, eq. for ordinal δ).
                    int lo = Math.Min(c, d), hi = Math.Max(c, d);
                    double s = 0;
                    for (int g = lo; g <= hi; g++) s += nc[g];
                    s -= (nc[c] + nc[d]) / 2;
                    return s * s;
            }
        }

        double observed = 0, expected = 0;
        for (int c = 0; c < k; c++)
            for (int d = 0; d < k; d++)
            {
                double delta = Delta2(c, d);
                observed += o[c, d] * delta;
                expected += nc[c] * nc[d] * delta;
            }
        return expected == 0 ? double.NaN : 1 - (n - 1) * observed / expected;
    }
}
