using System.Globalization;
using System.Text;
using System.Text.Json;
using RlhfSharp.Distributed;

namespace RlhfSharp.Training;

/// <summary>
/// Appends one JSON object per step or eval to <c>metrics.jsonl</c>, flushed each line so a crash keeps every
/// finished step, and keeps the rows in memory for plots.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    readonly string? path;
    readonly bool append;
    StreamWriter? writer;
    public List<Dictionary<string, double>> Rows { get; } = [];

    /// <remarks>The file (and its folder) is created by the first row, so a stage that stops before its first step writes nothing.</remarks>
    public MetricsLog(string? path, bool append = true)
    {
        // Under mpirun only rank 0 writes; the other ranks keep their rows in memory.
        this.path = DataParallel.IsRoot ? path : null;
        this.append = append;
        if (this.path is not null && append && File.Exists(path)) Rows.AddRange(Read(path!));
    }

    /// <summary>
    /// Opens a stage's log for a run that continues from the checkpoint of <paramref name="savedStep"/> (null: a fresh
    /// start): rows of later steps, written before a kill and about to be redone, are dropped (the file is rewritten
    /// atomically), so the log of a resumed run reads as that of an uninterrupted one.
    /// </summary>
    public static MetricsLog Resuming(string path, int? savedStep)
    {
        if (DataParallel.IsRoot && File.Exists(path))
        {
            var lines = File.ReadAllLines(path);
            var kept = lines.Where(line => StepOf(line) is double step && step <= (savedStep ?? 0)).ToList();
            if (kept.Count < lines.Length) Checkpoints.Durable.WriteAllText(path, kept.Count == 0 ? "" : string.Join('\n', kept) + "\n");
        }
        return new MetricsLog(path);
    }

    /// <summary>The "step" of a row; null for a row without one or a line cut by a crash.</summary>
    static double? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("step", out var s) && s.ValueKind == JsonValueKind.Number
                ? s.GetDouble() : null;
        }
        catch (JsonException) { return null; }
    }

    public void Write(IReadOnlyDictionary<string, double> row)
    {
        var copy = new Dictionary<string, double>(row);
        Rows.Add(copy);
        if (path is null) return;
        if (writer is null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            writer = new StreamWriter(path, append, new UTF8Encoding(false)) { AutoFlush = true };
        }
        var sb = new StringBuilder("{");
        foreach (var (k, v) in copy)
        {
            if (sb.Length > 1) sb.Append(',');
            sb.Append(JsonSerializer.Serialize(k)).Append(':');
            sb.Append(double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null");
        }
        writer.WriteLine(sb.Append('}').ToString());
    }

    public static IEnumerable<Dictionary<string, double>> Read(string path)
    {
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            Dictionary<string, double>? row = null;
            try
            {
                using var doc = JsonDocument.Parse(line);
                row = doc.RootElement.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Number)
                    .ToDictionary(p => p.Name, p => p.Value.GetDouble());
            }
            catch (JsonException) { } // a line cut by a crash: everything before it is kept
            if (row is not null) yield return row;
        }
    }

    public void Dispose() => writer?.Dispose();
}
