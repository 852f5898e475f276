using System.Globalization;
using RlhfSharp.Training;

namespace RlhfSharp.Cli;

/// <summary>
/// Progress as plain lines, for stderr that is not a terminal (a log file, CI, nohup). Spectre's live bars redraw the
/// whole list there, so every PPO update reprinted the earlier stages (issue 15). Here each stage prints a line when
/// it starts, at every tenth of the way, and when it reaches its last step, and never the same line twice.
/// </summary>
public sealed class PlainProgress(TextWriter output, IReadOnlyList<string> shown) : IProgress<TrainingProgress>
{
    readonly Dictionary<string, int> lastTenth = [];
    readonly Dictionary<string, DateTime> started = [];
    string? lastLine;

    public void Report(TrainingProgress p)
    {
        int total = Math.Max(1, p.TotalSteps);
        int tenth = (int)Math.Floor(10.0 * Math.Min(p.Step, total) / total);
        bool first = !lastTenth.ContainsKey(p.Stage);
        if (first) started[p.Stage] = DateTime.UtcNow;
        if (!first && tenth <= lastTenth[p.Stage] && p.Step < total) return;
        if (!first && lastTenth[p.Stage] == 10) return; // the stage already printed its end
        lastTenth[p.Stage] = p.Step >= total ? 10 : tenth;
        var numbers = shown.Where(p.Metrics.ContainsKey).Select(k => $"{k} {Number(p.Metrics[k])}");
        double seconds = (DateTime.UtcNow - started[p.Stage]).TotalSeconds;
        string line = $"{p.Stage} {p.Step}/{p.TotalSteps} ({100.0 * Math.Min(p.Step, total) / total:0}%) {seconds:0} s  {string.Join("  ", numbers)}".TrimEnd();
        if (line == lastLine) return;
        lastLine = line;
        output.WriteLine(line);
        output.Flush();
    }

    /// <summary>Three decimals at most, and never "-0" for a small negative number that rounds to zero.</summary>
    public static string Number(double value)
    {
        if (!double.IsFinite(value)) return value.ToString(CultureInfo.InvariantCulture);
        double rounded = Math.Round(value, 3);
        return (rounded == 0 ? 0 : rounded).ToString("0.###", CultureInfo.InvariantCulture);
    }
}
