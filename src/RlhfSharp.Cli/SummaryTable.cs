using System.Globalization;
using RlhfSharp.Pipeline;

namespace RlhfSharp.Cli;

/// <summary>
/// The table <c>rlhf pipeline</c> prints at the end, as plain aligned text: it fits 80 columns, so a log or a narrow
/// terminal never wraps a confidence interval over two lines (Spectre's bordered table did, issue 15).
/// </summary>
public static class SummaryTable
{
    static readonly string[] Header = ["policy", "gold", "gold 95% CI", "proxy", "KL", "train s", "tok/s"];

    public static IReadOnlyList<string> Lines(PipelineSummary summary)
    {
        // Rounded first, so a tiny negative number prints 0.000, never -0.000.
        static string F(double v) => double.IsFinite(v) ? (Math.Round(v, 3) is var r && r == 0 ? 0.0 : r).ToString("0.000", CultureInfo.InvariantCulture) : "–";
        var rows = new List<string[]> { Header };
        foreach (var (name, s) in summary.Policies)
            rows.Add([name, F(s.GoldMean), $"[{F(s.GoldCi95[0])}, {F(s.GoldCi95[1])}]", F(s.ProxyMean), F(s.KlToSft),
                s.TrainSeconds > 0 ? s.TrainSeconds.ToString("0", CultureInfo.InvariantCulture) : "",
                s.TrainSeconds > 0 ? s.TrainTokensPerSecond.ToString("0", CultureInfo.InvariantCulture) : ""]);
        var widths = Enumerable.Range(0, Header.Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        // The policy name left-aligned, the numbers right-aligned, two spaces between columns.
        var lines = rows.Select(r => string.Join("  ", r.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd()).ToList();
        lines.Insert(1, new string('-', lines.Max(l => l.Length)));
        lines.Add("");
        // Issue 14: whether the PRM's best-of-n beats the outcome RM's on gold, paired by prompt (the rows' intervals overlap).
        foreach (var (name, d) in summary.PrmVsRmBestOfN)
            lines.Add($"gold {name} − RM's pick, paired: {(d.Mean >= 0 ? "+" : "")}{F(d.Mean)} [{F(d.Ci95[0])}, {F(d.Ci95[1])}]");
        if (double.IsFinite(summary.RmGoldAccuracy))
            lines.Add($"RM accuracy against gold order {F(summary.RmGoldAccuracy)}; held-out annotators vs gold {F(summary.HeldOutAnnotatorGoldAgreement)}");
        lines.Add($"RM accuracy {summary.RmAccuracyText()}, annotator–gold agreement {summary.AnnotatorGoldAgreement.ToString("0.000", CultureInfo.InvariantCulture)}");
        return lines;
    }
}
