using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet.Serialization;

namespace RlhfSharp.Tests.Data;

/// <summary>Writes the same rows as .jsonl, .jsonl.gz, .json, .csv or .parquet, as a user's file would look.</summary>
internal static class DataFiles
{
    public static IReadOnlyList<string> Kinds { get; } = ["jsonl", "jsonl.gz", "json", "csv", "parquet"];

    public static string Write<T>(string dir, string name, string kind, IReadOnlyList<T> rows)
    {
        string path = Path.Combine(dir, $"{name}.{kind}");
        var objects = rows.Select(r => JsonSerializer.SerializeToNode(r)!.AsObject()).ToList();
        switch (kind)
        {
            case "jsonl":
                File.WriteAllText(path, string.Concat(objects.Select(o => o.ToJsonString() + "\n")));
                break;
            case "jsonl.gz":
                using (var gz = new GZipStream(File.Create(path), CompressionLevel.Optimal))
                    gz.Write(Encoding.UTF8.GetBytes(string.Concat(objects.Select(o => o.ToJsonString() + "\n"))));
                break;
            case "json":
                File.WriteAllText(path, new JsonArray(objects.Cast<JsonNode?>().ToArray()).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                break;
            case "csv":
                var header = objects[0].Select(p => p.Key).ToList();
                var sb = new StringBuilder(string.Join(",", header.Select(Quote)) + "\r\n");
                foreach (var o in objects)
                    sb.Append(string.Join(",", header.Select(h => Quote(o[h] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : o[h]?.ToJsonString() ?? "")))).Append("\r\n");
                File.WriteAllText(path, sb.ToString());
                break;
            case "parquet":
                ParquetSerializer.SerializeAsync(rows, path).GetAwaiter().GetResult();
                break;
            default: throw new ArgumentException(kind);
        }
        return path;
    }

    private static string Quote(string s) => "\"" + s.Replace("\"", "\"\"") + "\"";
}

#pragma warning disable IDE1006 // TRL's column names, so Parquet and JSON write them as they are
internal sealed class TextRow { public string text { get; set; } = ""; }
internal sealed class Msg { public string role { get; set; } = ""; public string content { get; set; } = ""; }
internal sealed class MessagesRow { public List<Msg> messages { get; set; } = []; }
internal sealed class PromptCompletionRow { public string prompt { get; set; } = ""; public string completion { get; set; } = ""; }
internal sealed class PreferenceRow { public string prompt { get; set; } = ""; public string chosen { get; set; } = ""; public string rejected { get; set; } = ""; public double margin { get; set; } }
internal sealed class ImplicitRow { public string chosen { get; set; } = ""; public string rejected { get; set; } = ""; }
internal sealed class RankingRow { public string prompt { get; set; } = ""; public List<string> responses { get; set; } = []; public List<int> ranking { get; set; } = []; }
internal sealed class PromptRow { public string prompt { get; set; } = ""; }
internal sealed class LabeledRow { public string prompt { get; set; } = ""; public string completion { get; set; } = ""; public bool label { get; set; } }
internal sealed class QuestionRow { public string question { get; set; } = ""; public string answer { get; set; } = ""; }
#pragma warning restore IDE1006
