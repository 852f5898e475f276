using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Synthesis;

/// <summary>
/// The output file of a synthesis run, written one JSON line per finished item and flushed to disk at once, so a run
/// that is killed keeps everything it paid for and a rerun skips the items already there (each line carries its item's
/// <c>id</c>). A last line cut off by the kill is dropped on reopening, by rewriting the file through a temporary file.
/// </summary>
public sealed class SynthJournal : IDisposable
{
    static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    readonly FileStream stream;
    readonly Dictionary<string, JsonObject> done = new();
    readonly List<JsonObject> records = new();
    readonly Lock gate = new();

    public string Path { get; }

    SynthJournal(string path)
    {
        Path = path;
        var complete = new List<string>();
        if (File.Exists(path))
        {
            string text = File.ReadAllText(path, Encoding.UTF8);
            var lines = text.Split('\n');
            // Everything before the last '\n' is complete; a tail without one is a line the kill cut off.
            for (int i = 0; i < lines.Length - 1; i++)
            {
                if (lines[i].Length == 0) continue;
                JsonObject o;
                try { o = JsonNode.Parse(lines[i]) as JsonObject ?? throw new JsonException("not an object"); }
                catch (JsonException e) { throw new RlhfException($"{path}:{i + 1}: not a JSON object ({e.Message}); move the file away to start over."); }
                string id = o["id"]?.GetValue<string>() ?? throw new RlhfException($"{path}:{i + 1}: no \"id\"; this file was not written by rlhf synth.");
                done[id] = o;
                records.Add(o);
                complete.Add(lines[i]);
            }
            if (lines[^1].Length > 0)
            {
                string tmp = path + ".tmp";
                File.WriteAllText(tmp, string.Concat(complete.Select(l => l + "\n")), new UTF8Encoding(false));
                File.Move(tmp, path, overwrite: true);
            }
        }
        else if (System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) is { } dir) Directory.CreateDirectory(dir);
        stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    /// <summary>Opens (or creates) the journal at <paramref name="path"/>.</summary>
    public static SynthJournal Open(string path) => new(path);

    /// <summary>The items finished by this and earlier runs, in the order they were written.</summary>
    public IReadOnlyList<JsonObject> Records { get { lock (gate) return records.ToList(); } }

    public bool IsDone(string id) { lock (gate) return done.ContainsKey(id); }

    /// <summary>Writes one finished item (it must have an <c>id</c>) and forces it to disk.</summary>
    public void Append(JsonObject record)
    {
        string id = record["id"]?.GetValue<string>() ?? throw new ArgumentException("a journal record needs an id");
        byte[] line = Encoding.UTF8.GetBytes(record.ToJsonString(Compact) + "\n");
        lock (gate)
        {
            if (done.ContainsKey(id)) return;
            stream.Write(line);
            stream.Flush(flushToDisk: true);
            done[id] = record;
            records.Add(record);
        }
    }

    public void Dispose() => stream.Dispose();
}
