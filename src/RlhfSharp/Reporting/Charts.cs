using ScottPlot;

namespace RlhfSharp.Reporting;

/// <summary>The run's plots as PNG files (ScottPlot).</summary>
public static class Charts
{
    /// <summary>One line per key of <paramref name="series"/> against <paramref name="xKey"/>; rows without the key are skipped.</summary>
    public static void Lines(IReadOnlyList<IReadOnlyDictionary<string, double>> rows, string xKey, IReadOnlyList<(string Key, string Label)> series,
        string title, string yLabel, string path)
    {
        if (!RlhfSharp.Distributed.DataParallel.IsRoot) return; // under mpirun rank 0 writes the run's files
        Save(LinesPlot(rows, xKey, series, title, yLabel), path, width: 900);
    }

    /// <summary>The plot <see cref="Lines"/> saves.</summary>
    public static Plot LinesPlot(IReadOnlyList<IReadOnlyDictionary<string, double>> rows, string xKey, IReadOnlyList<(string Key, string Label)> series,
        string title, string yLabel)
    {
        var plot = new Plot();
        foreach (var (key, label) in series)
        {
            var points = rows.Where(r => r.ContainsKey(xKey) && r.TryGetValue(key, out var v) && double.IsFinite(v)).ToList();
            if (points.Count == 0) continue;
            var line = plot.Add.Scatter(points.Select(r => r[xKey]).ToArray(), points.Select(r => r[key]).ToArray());
            line.LegendText = label;
            line.MarkerSize = points.Count > 60 ? 0 : 4;
        }
        plot.Title(title);
        plot.XLabel(xKey);
        plot.YLabel(yLabel);
        // Steps and rounds are whole numbers: a tick at 2.5 names a step that does not exist.
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        // Outside the axes, so the legend never covers the curves (inside, lower right, it hid the last steps of a loss).
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    /// <summary>Gold reward against KL to SFT for each policy, with 95% intervals: over-optimisation shows as gold falling at high KL.</summary>
    public static void GoldVsKl(IReadOnlyDictionary<string, PolicyScore> policies, string path) => Save(GoldVsKlPlot(policies), path, width: 900);

    /// <summary>Whether a policy is a baseline of the comparison (base, sft, best_of_n) rather than a trained method.</summary>
    public static bool IsBaseline(string policy) => policy is "base" or "sft" || policy.StartsWith("best_of_", StringComparison.Ordinal);

    /// <summary>
    /// The colour of each policy: the baselines in greys (light to dark: base, sft, best-of-n), the trained methods in
    /// Category10's saturated colours, so what the run trained stands out (Category20 gave the later, trained policies its pale halves).
    /// </summary>
    public static Dictionary<string, Color> PolicyColors(IEnumerable<string> policies)
    {
        var strong = new ScottPlot.Palettes.Category10();
        Color[] greys = [Color.FromHex("#b0b0b0"), Color.FromHex("#808080"), Color.FromHex("#505050")];
        int trained = 0, baseline = 0;
        return policies.ToDictionary(p => p, p => IsBaseline(p) ? greys[Math.Min(baseline++, greys.Length - 1)] : strong.GetColor(trained++));
    }

    /// <summary>The plot <see cref="GoldVsKl"/> saves.</summary>
    public static Plot GoldVsKlPlot(IReadOnlyDictionary<string, PolicyScore> policies)
    {
        var plot = new Plot();
        var colors = PolicyColors(policies.Keys);
        foreach (var (name, s) in policies)
        {
            var color = colors[name];
            var bar = plot.Add.ErrorBar([s.KlToSft], [s.GoldMean], [(s.GoldCi95[1] - s.GoldCi95[0]) / 2]);
            bar.Color = color;
            var marker = plot.Add.Marker(s.KlToSft, s.GoldMean);
            marker.Color = color;
            marker.Size = 10;
            marker.LegendText = name;
        }
        plot.Title("Gold reward vs KL to SFT (95% CI)");
        plot.XLabel("KL(policy ‖ SFT), nats per sample");
        plot.YLabel("gold reward");
        // Outside the axes: with a dozen methods an inside legend hides the high-KL points it names.
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    static void Save(Plot plot, string path, int width = 720)
    {
        string tmp = path + ".tmp.png";
        plot.SavePng(tmp, width, 420);
        File.Move(tmp, path, overwrite: true);
    }
}
