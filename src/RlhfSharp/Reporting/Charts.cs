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
        plot.ShowLegend(Alignment.LowerRight);
        Save(plot, path);
    }

    /// <summary>Gold reward against KL to SFT for each policy, with 95% intervals: over-optimisation shows as gold falling at high KL.</summary>
    public static void GoldVsKl(IReadOnlyDictionary<string, PolicyScore> policies, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category20();
        int i = 0;
        foreach (var (name, s) in policies)
        {
            var color = palette.GetColor(i++);
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
        Save(plot, path, width: 900);
    }

    static void Save(Plot plot, string path, int width = 720)
    {
        string tmp = path + ".tmp.png";
        plot.SavePng(tmp, width, 420);
        File.Move(tmp, path, overwrite: true);
    }
}
