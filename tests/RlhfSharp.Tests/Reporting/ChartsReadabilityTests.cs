using RlhfSharp.Reporting;

namespace RlhfSharp.Tests.Reporting;

/// <summary>Issue 15, plots: integer ticks on step axes, the trained policy in the strongest colour, captions that say what to read.</summary>
public sealed class ChartsReadabilityTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-charts-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static List<IReadOnlyDictionary<string, double>> Rows(int steps) =>
        [.. Enumerable.Range(1, steps).Select(s => (IReadOnlyDictionary<string, double>)new Dictionary<string, double> { ["step"] = s, ["loss"] = 3.0 / s })];

    [Fact]
    public void A_three_step_run_gets_only_whole_step_ticks()
    {
        var plot = Charts.LinesPlot(Rows(3), "step", [("loss", "train loss")], "loss", "nats");
        plot.GetImage(900, 420); // ticks are generated when the plot is laid out
        var ticks = plot.Axes.Bottom.TickGenerator.Ticks.Where(t => t.IsMajor).Select(t => t.Position).ToList();
        Assert.NotEmpty(ticks);
        Assert.All(ticks, t => Assert.Equal(Math.Round(t), t, 9));
    }

    /// <summary>
    /// Where the plot's legends were drawn, as pixel rectangles of the last render: the in-axes legend if shown, and each
    /// legend panel on an edge (placed by ScottPlot's layout beside the data area).
    /// </summary>
    static List<ScottPlot.PixelRect> LegendRects(ScottPlot.Plot plot)
    {
        var layout = plot.RenderManager.LastRender.Layout;
        var rects = new List<ScottPlot.PixelRect>();
        // ScottPlot draws its in-axes legend inside the data area (at its Alignment), so a shown one covers part of it.
        if (plot.Legend.IsVisible && plot.Legend.GetItems().Length > 0) rects.Add(layout.DataRect);
        foreach (var panel in plot.Axes.GetPanels().OfType<ScottPlot.Panels.LegendPanel>().Where(p => p.IsVisible))
        {
            float offset = layout.PanelOffsets[panel], size = layout.PanelSizes[panel];
            var d = layout.DataRect;
            rects.Add(panel.Edge switch
            {
                ScottPlot.Edge.Right => new(d.Right + offset, d.Right + offset + size, d.Top, d.Bottom),
                ScottPlot.Edge.Left => new(d.Left - offset - size, d.Left - offset, d.Top, d.Bottom),
                ScottPlot.Edge.Top => new(d.Left, d.Right, d.Top - offset - size, d.Top - offset),
                _ => new(d.Left, d.Right, d.Bottom + offset, d.Bottom + offset + size),
            });
        }
        return rects;
    }

    [Fact]
    public void Legends_are_drawn_beside_the_data_not_over_it()
    {
        // Inside the axes the legend hid the last steps of a falling loss (lower right) and the high-KL points of the
        // gold-vs-KL plot; drawn beside the data area it covers nothing.
        var policies = new Dictionary<string, PolicyScore>();
        foreach (var (name, i) in new[] { "base", "sft", "best_of_4", "ppo", "dpo", "grpo", "rloo", "kto" }.Select((n, i) => (n, i)))
            policies[name] = new PolicyScore { GoldMean = 2 + 0.1 * i, GoldCi95 = [1.9 + 0.1 * i, 2.1 + 0.1 * i], KlToSft = i, KlCi95 = [i, i], Samples = 200 };
        var plots = new (string Name, ScottPlot.Plot Plot, int Height)[]
        {
            ("lines", Charts.LinesPlot(Rows(60), "step", [("loss", "train loss"), ("loss", "eval loss")], "loss", "nats"), 420),
            ("gold vs KL", Charts.GoldVsKlPlot(policies), 420),
        };
        foreach (var (name, plot, height) in plots)
        {
            plot.GetImage(900, height);
            var data = plot.RenderManager.LastRender.DataRect;
            var legends = LegendRects(plot);
            Assert.True(legends.Count > 0, $"{name}: no legend drawn");
            foreach (var l in legends)
            {
                Assert.True(l.Width > 10 && l.Height > 10, $"{name}: legend {l} is empty");
                bool overlaps = l.Left < data.Right && l.Right > data.Left && l.Top < data.Bottom && l.Bottom > data.Top;
                Assert.False(overlaps, $"{name}: legend {l} lies over the data area {data}");
            }
        }
    }

    static double Saturation(ScottPlot.Color c) => (Math.Max(c.R, Math.Max(c.G, c.B)) - Math.Min(c.R, Math.Min(c.G, c.B))) / 255.0;

    [Fact]
    public void Trained_policies_get_saturated_colours_and_baselines_greys()
    {
        var colors = Charts.PolicyColors(["base", "sft", "best_of_4", "ppo", "dpo", "grpo"]);
        foreach (var baseline in new[] { "base", "sft", "best_of_4" }) Assert.Equal(0, Saturation(colors[baseline]));
        foreach (var trained in new[] { "ppo", "dpo", "grpo" }) Assert.True(Saturation(colors[trained]) > 0.4, $"{trained}: {colors[trained]}");
        Assert.Equal(3, new[] { "ppo", "dpo", "grpo" }.Select(p => colors[p]).Distinct().Count());
    }

    [Fact]
    public void Every_policy_of_the_full_leaderboard_looks_different()
    {
        // The 22 rows `rlhf pipeline --algo all` grades: more than Category10's colours and the three greys.
        string[] policies = ["base", "sft", "best_of_4", "best_of_4_prm_min", "best_of_4_prm_product", "best_of_4_prm_last",
            "ppo", "dpo", "ipo", "kto", "orpo", "simpo", "grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "remax", "rs",
            "online_dpo", "ilql", "nlpo", "a2c"];
        var styles = Charts.PolicyStyles(policies);
        Assert.Equal(policies.Length, styles.Values.Distinct().Count());
        // None of the trained methods may be a grey: HSV saturation, (max − min) / max, well above 0 (Category10's lowest is its brown's 0.46).
        static double Hsv(ScottPlot.Color c) => (Math.Max(c.R, Math.Max(c.G, c.B)) - Math.Min(c.R, Math.Min(c.G, c.B))) / (double)Math.Max(c.R, Math.Max(c.G, c.B));
        foreach (var p in policies.Where(p => !Charts.IsBaseline(p))) Assert.True(Hsv(styles[p].Color) > 0.3, $"{p}: {styles[p].Color}");
    }

    [Fact]
    public void Report_plots_carry_captions_that_say_what_to_read_not_file_names()
    {
        string ppo = Directory.CreateDirectory(Path.Combine(tmp, "ppo")).FullName;
        Charts.Lines(Rows(3), "step", [("loss", "kl")], "PPO: KL", "nats", Path.Combine(ppo, "kl.png"));
        string report = Path.Combine(tmp, "report.html");
        HtmlReport.Write(report, "t", new Dictionary<string, PolicyScore>(), new Dictionary<string, double>(), [Path.Combine(ppo, "kl.png")], [], "{}");
        string html = File.ReadAllText(report);
        Assert.Contains("<figcaption>ppo: KL of the policy to its reference per step", html);
        Assert.DoesNotContain("<figcaption>kl.png", html);
    }

    [Fact]
    public void A_stages_gold_vs_kl_plot_is_captioned_per_step_and_the_runs_per_policy()
    {
        string run = Directory.CreateDirectory(Path.Combine(tmp, "run")).FullName;
        string ppo = Directory.CreateDirectory(Path.Combine(run, "ppo")).FullName;
        File.WriteAllText(Path.Combine(ppo, "metrics.jsonl"), "{\"step\": 1}\n");
        Assert.StartsWith("ppo: gold and proxy reward of each step's rollouts", HtmlReport.Caption(Path.Combine(ppo, "gold_vs_kl.png")));
        Assert.StartsWith("Gold reward against KL to the SFT model, one point per policy", HtmlReport.Caption(Path.Combine(run, "gold_vs_kl.png")));
    }
}
