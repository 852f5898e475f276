using System.Collections;
using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;
using Parquet.Serialization;

namespace RlhfSharp.Data;

/// <summary>
/// Reads a dataset file into raw rows (<see cref="DataRow"/>): JSON Lines (<c>.jsonl</c>), a JSON array of objects or
/// <c>{"data": [...]}</c> (<c>.json</c>), CSV with a header row (<c>.csv</c>, RFC 4180; every value is a string) and
/// Parquet (<c>.parquet</c>; strings, numbers, booleans, lists and structs, so a <c>messages</c> column of
/// structs works). A <c>.gz</c> suffix on the text formats means gzip. Rows that cannot be read come back with
/// <see cref="DataRow.Error"/> set, so the caller decides whether to stop or skip.
/// </summary>
public static class DatasetReader
{
    /// <summary>The extensions <see cref="Read"/> accepts.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".jsonl", ".jsonl.gz", ".json", ".json.gz", ".csv", ".csv.gz", ".parquet"];

    /// <summary>The rows of <paramref name="path"/>, streamed (JSON and Parquet files are read whole).</summary>
    /// <exception cref="RlhfException">Missing file, unknown extension, or a file-level error (e.g. a .json that is not an array).</exception>
    public static IEnumerable<DataRow> Read(string path)
    {
        if (!File.Exists(path)) throw new RlhfException($"{path}: dataset file not found");
        string name = path.ToLowerInvariant();
        bool gz = name.EndsWith(".gz");
        if (gz) name = name[..^3];
        string kind = Path.GetExtension(name);
        return kind switch
        {
            ".jsonl" => ReadJsonLines(path, gz),
            ".json" => ReadJson(path, gz),
            ".csv" => ReadCsv(path, gz),
            ".parquet" when !gz => ReadParquet(path),
            _ => throw new RlhfException($"{path}: unknown dataset format; use one of {string.Join(", ", Extensions)}"),
        };
    }

    private static Stream Open(string path, bool gz)
    {
        Stream s = File.OpenRead(path);
        return gz ? new GZipStream(s, CompressionMode.Decompress) : s;
    }

    private static IEnumerable<DataRow> ReadJsonLines(string path, bool gz)
    {
        using var stream = Open(path, gz);
        foreach (var (line, text) in ReadLinesOrThrow(path, stream))
        {
            if (text is null) { yield return new DataRow(path, line, null, "not valid UTF-8"); continue; }
            if (string.IsNullOrWhiteSpace(text)) continue;
            yield return ParseObject(path, line, text);
        }
    }

    // A corrupt gzip stream fails inside the enumeration: turn it into a user-facing error.
    private static IEnumerable<(long, string?)> ReadLinesOrThrow(string path, Stream stream)
    {
        using var e = Utf8LineReader.ReadLines(stream).GetEnumerator();
        long last = 0;
        while (true)
        {
            try { if (!e.MoveNext()) yield break; }
            catch (InvalidDataException ex) { throw new RlhfException($"{path}:{last + 1}: the gzip stream is corrupt ({ex.Message})", ex); }
            last = e.Current.Line;
            yield return e.Current;
        }
    }

    private static DataRow ParseObject(string path, long line, string text)
    {
        // Valid syntax that JsonNode reads wrongly later (a duplicate key throws on access, a lone surrogate when read).
        if (StrictJson.FindDefect(text) is { } defect) return new DataRow(path, line, null, defect.Message);
        JsonNode? node;
        try { node = JsonNode.Parse(text); }
        catch (JsonException ex) { return new DataRow(path, line, null, $"invalid JSON ({ex.Message})"); }
        return node is JsonObject obj ? new DataRow(path, line, obj)
            : new DataRow(path, line, null, $"expected a JSON object, got {Kind(node)}");
    }

    private static IEnumerable<DataRow> ReadJson(string path, bool gz)
    {
        byte[] bytes;
        using (var stream = Open(path, gz))
        using (var copy = new MemoryStream())
        {
            stream.CopyTo(copy);
            bytes = copy.ToArray();
        }
        var rows = new List<DataRow>();
        // Walk the document with a reader rather than JsonNode.Parse so every element knows its line, and one bad
        // element (invalid UTF-8 in a string) does not hide the rest.
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        try
        {
            if (!reader.Read()) throw new RlhfException($"{path}:1: the file is empty; expected a JSON array of objects or {{\"data\": [...]}}");
            if (reader.TokenType == JsonTokenType.StartObject)
            {
                bool found = false;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    bool isData = reader.ValueTextEquals("data"u8);
                    reader.Read();
                    if (isData && reader.TokenType == JsonTokenType.StartArray) { found = true; break; }
                    reader.Skip();
                }
                if (!found) throw new RlhfException($"{path}:1: expected a JSON array of objects or an object with a \"data\" array");
            }
            else if (reader.TokenType != JsonTokenType.StartArray)
                throw new RlhfException($"{path}:1: expected a JSON array of objects or {{\"data\": [...]}}, got {reader.TokenType}");

            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                int start = (int)reader.TokenStartIndex;
                long line = 1 + bytes.AsSpan(0, start).Count((byte)'\n');
                reader.Skip();
                var slice = bytes.AsSpan(start, (int)reader.BytesConsumed - start);
                if (!Utf8.IsValid(slice)) { rows.Add(new DataRow(path, line, null, "not valid UTF-8")); continue; }
                rows.Add(ParseObject(path, line, System.Text.Encoding.UTF8.GetString(slice)));
            }
        }
        catch (JsonException ex)
        {
            throw new RlhfException($"{path}:{(ex.LineNumber ?? 0) + 1}: invalid JSON ({ex.Message})", ex);
        }
        return rows;
    }

    private static IEnumerable<DataRow> ReadCsv(string path, bool gz)
    {
        using var stream = Open(path, gz);
        List<string>? header = null;
        foreach (var (line, fields, error) in CsvParser.Parse(ReadLinesOrThrow(path, stream)))
        {
            if (header is null)
            {
                if (fields is null) throw new RlhfException($"{path}:{line}: cannot read the CSV header: {error}");
                header = fields;
                var dup = header.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1);
                if (dup is not null) throw new RlhfException($"{path}:{line}: the CSV header names column \"{dup.Key}\" twice");
                continue;
            }
            if (fields is null) { yield return new DataRow(path, line, null, error); continue; }
            if (fields.Count != header.Count)
            {
                yield return new DataRow(path, line, null, $"the row has {fields.Count} fields but the header has {header.Count}");
                continue;
            }
            var obj = new JsonObject();
            for (int i = 0; i < header.Count; i++) obj[header[i]] = fields[i];
            yield return new DataRow(path, line, obj);
        }
    }

    private static IEnumerable<DataRow> ReadParquet(string path)
    {
        IList<Dictionary<string, object>> data;
        try
        {
            using var stream = File.OpenRead(path);
            var result = ParquetSerializer.DeserializeUntypedAsync(stream).GetAwaiter().GetResult();
            data = result.Data!;
        }
        catch (Exception ex) when (ex is not RlhfException)
        {
            throw new RlhfException($"{path}: cannot read the Parquet file ({ex.Message})", ex);
        }
        long row = 0;
        foreach (var dict in data)
        {
            row++;
            DataRow result;
            try { result = new DataRow(path, row, (JsonObject)ToJson(dict)!); }
            catch (NotSupportedException ex) { result = new DataRow(path, row, null, ex.Message); }
            yield return result;
        }
    }

    private static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        ReadOnlyMemory<char> m => JsonValue.Create(m.ToString()),
        bool b => JsonValue.Create(b),
        byte or sbyte or short or ushort or int or uint or long or ulong => JsonValue.Create(Convert.ToInt64(value)),
        float or double or decimal => JsonValue.Create(Convert.ToDouble(value)),
        IDictionary dict => ToJsonObject(dict),
        IEnumerable list => new JsonArray(list.Cast<object?>().Select(ToJson).ToArray()),
        _ => throw new NotSupportedException($"unsupported Parquet value of type {value.GetType().Name}"),
    };

    private static JsonObject ToJsonObject(IDictionary dict)
    {
        var obj = new JsonObject();
        foreach (DictionaryEntry e in dict) obj[(string)e.Key] = ToJson(e.Value);
        return obj;
    }

    internal static string Kind(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "an array",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        },
        _ => "?",
    };
}
