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
    public static void GoldVsKl(IReadOnlyDictionary<string, PolicyScore> policies, string path) =>
        // Taller with many policies, so the legend stays in one column and no name is cut.
        Save(GoldVsKlPlot(policies), path, width: 900, height: Math.Max(420, 60 + 24 * policies.Count));

    /// <summary>Whether a policy is a baseline of the comparison (base, sft, best_of_n) rather than a trained method.</summary>
    public static bool IsBaseline(string policy) => policy is "base" or "sft" || policy.StartsWith("best_of_", StringComparison.Ordinal);

    /// <summary>
    /// The colour of each policy: the baselines in greys (light to dark: base, sft, best-of-n), the trained methods in
    /// Category10's saturated colours (its grey left out), so what the run trained stands out (Category20 gave the later, trained policies its pale halves).
    /// </summary>
    public static Dictionary<string, Color> PolicyColors(IEnumerable<string> policies) => PolicyStyles(policies).ToDictionary(p => p.Key, p => p.Value.Color);

    /// <summary>
    /// Colour and marker of each policy (<see cref="PolicyColors"/>): once the nine colours or the three greys are used up
    /// the next policies take them again with another marker shape, so no two policies look alike (the full leaderboard
    /// has 16 methods and 6 baselines).
    /// </summary>
    public static Dictionary<string, (Color Color, MarkerShape Shape)> PolicyStyles(IEnumerable<string> policies)
    {
        // Category10 without its grey, which belongs to the baselines.
        var strong = new ScottPlot.Palettes.Category10().Colors.Where(c => c.R != c.G || c.G != c.B).ToArray();
        Color[] greys = [Color.FromHex("#b0b0b0"), Color.FromHex("#808080"), Color.FromHex("#505050")];
        MarkerShape[] shapes = [MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond, MarkerShape.FilledTriangleDown];
        int trained = 0, baseline = 0;
        var styles = new Dictionary<string, (Color, MarkerShape)>();
        foreach (var p in policies)
        {
            if (IsBaseline(p))
            {
                // base and sft take the two lighter greys; every best-of-n variant the darkest, told apart by shape.
                int i = baseline++;
                styles[p] = i < 2 ? (greys[i], shapes[0]) : (greys[2], shapes[(i - 2) % shapes.Length]);
            }
            else
            {
                int i = trained++;
                styles[p] = (strong[i % strong.Length], shapes[i / strong.Length % shapes.Length]);
            }
        }
        return styles;
    }

    /// <summary>The plot <see cref="GoldVsKl"/> saves.</summary>
    public static Plot GoldVsKlPlot(IReadOnlyDictionary<string, PolicyScore> policies)
    {
        var plot = new Plot();
        var styles = PolicyStyles(policies.Keys);
        foreach (var (name, s) in policies)
        {
            var (color, shape) = styles[name];
            var bar = plot.Add.ErrorBar([s.KlToSft], [s.GoldMean], [(s.GoldCi95[1] - s.GoldCi95[0]) / 2]);
            bar.Color = color;
            var marker = plot.Add.Marker(s.KlToSft, s.GoldMean);
            marker.Color = color;
            marker.Shape = shape;
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

    static void Save(Plot plot, string path, int width = 720, int height = 420)
    {
        string tmp = path + ".tmp.png";
        plot.SavePng(tmp, width, height);
        File.Move(tmp, path, overwrite: true);
    }
}
