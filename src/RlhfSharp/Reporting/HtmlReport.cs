using System.Net;
using System.Text;

namespace RlhfSharp.Reporting;

/// <summary>One prompt's completions from each policy, with their gold and proxy scores.</summary>
public sealed record SampleRow(string Prompt, IReadOnlyDictionary<string, (string Text, double Gold, double Proxy)> ByPolicy);

/// <summary>
/// A self-contained report.html: the policies' scores with 95% intervals, the plots (embedded, so the file can be
/// mailed alone), sample completions side by side, and the resolved config. All text is HTML-escaped.
/// </summary>
public static class HtmlReport
{
    public static void Write(string path, string title, IReadOnlyDictionary<string, PolicyScore> policies,
        IReadOnlyDictionary<string, double> headline, IReadOnlyList<string> plots, IReadOnlyList<SampleRow> samples, string configJson)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        static string F(double v) => double.IsFinite(v) ? v.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture) : "–";
        var html = new StringBuilder();
        html.Append($"<!doctype html><html><head><meta charset=\"utf-8\"><title>{E(title)}</title><style>")
            .Append("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}")
            .Append("td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}td.ci{white-space:nowrap}")
            .Append("img{max-width:100%;margin:0.5em 0}pre{background:#f8f8f8;padding:1em;overflow:auto;font-size:12px}.story{white-space:pre-wrap;min-width:220px;max-width:360px}")
            // A samples table with many policies scrolls in its own box; the page (plots, scores) keeps the window's width.
            .Append(".wide{overflow-x:auto;max-width:100%}")
            .Append("</style></head><body>");
        html.Append($"<h1>{E(title)}</h1>");
        html.Append("<h2>Policies on held-out prompts</h2><table><tr><th>policy</th><th>gold mean</th><th>gold 95% CI</th><th>proxy (RM) mean</th><th>KL to SFT</th><th>KL 95% CI</th><th>samples</th><th>train seconds</th><th>train tokens/s</th></tr>");
        foreach (var (name, s) in policies)
            html.Append($"<tr><td>{E(name)}</td><td class=num>{F(s.GoldMean)}</td><td class='num ci'>[{F(s.GoldCi95[0])}, {F(s.GoldCi95[1])}]</td>" +
                        $"<td class=num>{F(s.ProxyMean)}</td><td class=num>{F(s.KlToSft)}</td><td class='num ci'>[{F(s.KlCi95[0])}, {F(s.KlCi95[1])}]</td><td class=num>{s.Samples}</td>" +
                        $"<td class=num>{(s.TrainSeconds > 0 ? F(s.TrainSeconds) : "–")}</td><td class=num>{(s.TrainSeconds > 0 ? s.TrainTokensPerSecond.ToString("0", System.Globalization.CultureInfo.InvariantCulture) : "–")}</td></tr>");
        html.Append("</table><table>");
        foreach (var (k, v) in headline) html.Append($"<tr><th>{E(k)}</th><td class=num>{F(v)}</td></tr>");
        html.Append("</table>");
        html.Append("<h2>Plots</h2>");
        foreach (var plot in plots.Where(File.Exists))
        {
            string caption = Caption(plot);
            html.Append($"<figure><img alt=\"{E(caption)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(plot))}\"><figcaption>{E(caption)}</figcaption></figure>");
        }
        html.Append("<h2>Samples</h2><div class=wide><table><tr><th>prompt</th>");
        var names = policies.Keys.ToList();
        foreach (var n in names) html.Append($"<th>{E(n)}</th>");
        html.Append("</tr>");
        foreach (var row in samples)
        {
            html.Append($"<tr><td class=story>{E(row.Prompt)}</td>");
            foreach (var n in names)
                html.Append(row.ByPolicy.TryGetValue(n, out var c)
                    ? $"<td class=story>{E(c.Text)}<br><small>gold {F(c.Gold)} · proxy {F(c.Proxy)}</small></td>"
                    : "<td></td>");
            html.Append("</tr>");
        }
        html.Append($"</table></div><h2>Config</h2><pre>{E(configJson)}</pre></body></html>");
        File.WriteAllText(path + ".tmp", html.ToString());
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>What to read from a plot of the run, by its stage folder and file name (the file name alone said nothing).</summary>
    public static string Caption(string plot)
    {
        string file = Path.GetFileName(plot), stage = Path.GetFileName(Path.GetDirectoryName(plot)) ?? "";
        return (stage, file) switch
        {
            // A PPO-family stage's own plot (its folder holds the stage's metrics.jsonl): one point per training step.
            (_, "gold_vs_kl.png") when File.Exists(Path.Combine(Path.GetDirectoryName(plot) ?? "", "metrics.jsonl")) =>
                $"{stage}: gold and proxy reward of each step's rollouts against their KL to the SFT model: where the gold stops rising while the proxy climbs, over-optimisation of the reward model starts.",
            (_, "gold_vs_kl.png") => "Gold reward against KL to the SFT model, one point per policy with its 95% interval: up is better; a method that moves far right without rising paid KL for nothing, and one that falls at high KL over-optimised the reward model.",
            ("sft", "loss.png") => "SFT: loss on the response tokens per step; the eval loss should fall with the train loss, and a rising eval loss means over-fitting.",
            ("rm", "accuracy.png") => "Reward model: how often it ranks the preferred response higher, on training pairs and held-out pairs; 0.5 is chance, and the held-out line is what the later stages rely on.",
            (_, "reward.png") => $"{stage}: reward of the policy's samples per step; the proxy (reward model) should rise, and a gold reward that stalls or falls while the proxy rises is reward hacking.",
            (_, "kl.png") => $"{stage}: KL of the policy to its reference per step; it grows as the policy moves away, and a steep rise means the KL penalty is too weak.",
            (_, "loss.png") => $"{stage}: training loss per step, with the eval loss when pairs were held out.",
            (_, "margin.png") => $"{stage}: the implicit reward margin between chosen and rejected responses; it should grow on held-out pairs, not only on training pairs.",
            _ => $"{stage}: {Path.GetFileNameWithoutExtension(file).Replace('_', ' ')}",
        };
    }
}
