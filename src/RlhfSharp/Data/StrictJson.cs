using System.Text;
using System.Text.Json;

namespace RlhfSharp.Data;

/// <summary>
/// The two things a JSON parser lets through that a recipe or a record must not hold: a key given twice in one
/// object (System.Text.Json's <c>JsonNode</c> keeps the last one silently, or throws on first access, depending on
/// the path taken) and a string with a lone UTF-16 surrogate escape (<c>"\ud800"</c>: valid JSON syntax, but no
/// text, so reading it as a string throws). RFC 8259 §4 leaves duplicate names to the implementation; we refuse them,
/// as Python's <c>json</c> with <c>object_pairs_hook</c> checks and as safetensors refuses duplicate tensor names.
/// Written here by hand because it must name the key's dotted path, which no parser's error does.
/// </summary>
public static class StrictJson
{
    /// <summary>
    /// The first defect in <paramref name="utf8"/>: the key's dotted path and a sentence naming it (e.g. <c>duplicate key
    /// 'sft.epochs'</c>), or null when there is none. Syntax errors are left to the parser that reads the text afterwards (null here).
    /// </summary>
    /// <param name="duplicates">Whether a key given twice is a defect (an API body may leave that to the parser, as OpenAI's does).</param>
    public static JsonDefect? FindDefect(ReadOnlySpan<byte> utf8, JsonCommentHandling comments = JsonCommentHandling.Disallow, bool allowTrailingCommas = false, bool duplicates = true)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = comments == JsonCommentHandling.Allow ? JsonCommentHandling.Skip : comments, AllowTrailingCommas = allowTrailingCommas });
        // One frame per open container: the keys seen (objects only), the path to the container, the next array index.
        var keys = new Stack<HashSet<string>?>();
        var paths = new Stack<string>();
        var index = new Stack<int>();
        string path = "", property = "";
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        string here = Child(keys, paths, index, property);
                        keys.Push(reader.TokenType == JsonTokenType.StartObject ? new HashSet<string>(StringComparer.Ordinal) : null);
                        paths.Push(here);
                        index.Push(0);
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        keys.Pop(); paths.Pop(); index.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        string name;
                        try { name = reader.GetString()!; }
                        catch (InvalidOperationException) { return new(Show(paths.Peek()), $"a key in '{Show(paths.Peek())}' holds a lone UTF-16 surrogate escape (e.g. \\ud800), which is not text"); }
                        path = Join(paths.Peek(), name);
                        if (!keys.Peek()!.Add(name) && duplicates) return new(path, $"duplicate key '{path}' (each key may appear once)");
                        property = name;
                        continue;
                    case JsonTokenType.String:
                        string at = Child(keys, paths, index, property);
                        try { reader.GetString(); }
                        catch (InvalidOperationException) { return new(Show(at), $"'{Show(at)}' holds a lone UTF-16 surrogate escape (e.g. \\ud800), which is not text"); }
                        break;
                    case JsonTokenType.Number or JsonTokenType.True or JsonTokenType.False or JsonTokenType.Null:
                        Child(keys, paths, index, property);
                        break;
                }
            }
        }
        catch (JsonException) { return null; }
        return null;
    }

    /// <summary>The path of the value about to be read, counting it as an array element when its container is an array.</summary>
    static string Child(Stack<HashSet<string>?> keys, Stack<string> paths, Stack<int> index, string property)
    {
        if (keys.Count == 0) return "";
        if (keys.Peek() is not null) return Join(paths.Peek(), property);
        int i = index.Pop();
        index.Push(i + 1);
        return $"{paths.Peek()}[{i}]";
    }

    static string Join(string parent, string name) => parent.Length == 0 ? name : $"{parent}.{name}";
    static string Show(string path) => path.Length == 0 ? "(root)" : path;

    /// <summary><see cref="FindDefect(ReadOnlySpan{byte}, JsonCommentHandling, bool, bool)"/> for text already decoded.</summary>
    public static JsonDefect? FindDefect(string text, JsonCommentHandling comments = JsonCommentHandling.Disallow, bool allowTrailingCommas = false) =>
        FindDefect(Encoding.UTF8.GetBytes(text), comments, allowTrailingCommas);
}

/// <summary>A defect <see cref="StrictJson"/> found: where (a dotted path such as <c>messages[0].content</c>) and why, as a sentence.</summary>
public sealed record JsonDefect(string Path, string Message)
{
    public override string ToString() => Message;
}
