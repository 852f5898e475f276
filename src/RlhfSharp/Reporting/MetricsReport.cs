using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace RlhfSharp.Reporting;

/// <summary>One evaluated prompt: its completion, the reference if any, and the judge's score if any.</summary>
public sealed record EvaluatedSample(string Prompt, string Completion, string? Reference, double? Reward);

/// <summary>
/// Writes the output of <c>rlhf eval</c>: <c>metrics.json</c> (a flat name → number object, so runs diff and
/// plot easily) and a self-contained <c>report.html</c> in the style of <see cref="HtmlReport"/>.
/// </summary>
public static class MetricsReport
{
    /// <summary>Writes <c>metrics.json</c> into <paramref name="dir"/>; non-finite values become null.</summary>
    public static string WriteJson(string dir, IReadOnlyDictionary<string, double> metrics)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "metrics.json");
        var o = metrics.ToDictionary(kv => kv.Key, kv => double.IsFinite(kv.Value) ? (double?)kv.Value : null);
        File.WriteAllText(path, JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        return path;
    }

    /// <summary>Writes <c>report.html</c> into <paramref name="dir"/>: the metric table, then every sample.</summary>
    public static string WriteHtml(string dir, string title, IReadOnlyDictionary<string, double> metrics, IReadOnlyList<EvaluatedSample> samples)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        static string F(double v) => double.IsFinite(v) ? v.ToString("0.0000", CultureInfo.InvariantCulture) : "–";
        Directory.CreateDirectory(dir);
        var html = new StringBuilder();
        html.Append($"<!doctype html><html><head><meta charset=\"utf-8\"><title>{E(title)}</title><style>")
            .Append("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}")
            .Append("td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}")
            .Append(".story{white-space:pre-wrap;max-width:360px}</style></head><body>");
        html.Append($"<h1>{E(title)}</h1><h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>");
        foreach (var (k, v) in metrics) html.Append($"<tr><td>{E(k)}</td><td class=num>{F(v)}</td></tr>");
        html.Append("</table><h2>Samples</h2><table><tr><th>prompt</th><th>completion</th><th>reference</th><th>reward</th></tr>");
        foreach (var s in samples)
            html.Append($"<tr><td class=story>{E(s.Prompt)}</td><td class=story>{E(s.Completion)}</td><td class=story>{E(s.Reference ?? "")}</td>" +
                        $"<td class=num>{(s.Reward is double r ? F(r) : "")}</td></tr>");
        html.Append("</table></body></html>");
        string path = Path.Combine(dir, "report.html");
        File.WriteAllText(path, html.ToString());
        return path;
    }
}
