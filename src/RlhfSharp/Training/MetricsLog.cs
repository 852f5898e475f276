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
    readonly StreamWriter? writer;
    public List<Dictionary<string, double>> Rows { get; } = [];

    public MetricsLog(string? path, bool append = true)
    {
        // Under mpirun only rank 0 writes; the other ranks keep their rows in memory.
        if (path is null || !DataParallel.IsRoot) return;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        if (append && File.Exists(path)) Rows.AddRange(Read(path));
        writer = new StreamWriter(path, append, new UTF8Encoding(false)) { AutoFlush = true };
    }

    public void Write(IReadOnlyDictionary<string, double> row)
    {
        var copy = new Dictionary<string, double>(row);
        Rows.Add(copy);
        if (writer is null) return;
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
