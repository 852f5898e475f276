using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Data;

/// <summary>A bad record: the reason, without the file:line that <see cref="DatasetLoader"/> adds.</summary>
internal sealed class BadRowException(string reason) : Exception(reason);

/// <summary>Typed access to one mapped row; every failure names the field as the file spells it.</summary>
internal sealed class RowFields(JsonObject row, FieldMap map)
{
    public JsonObject Row => row;

    private string Name(string field) => map.SourceName(field) is var s && s != field ? $"\"{s}\" (mapped to {field})" : $"\"{field}\"";

    public bool Has(string field) => row.ContainsKey(field);

    private JsonNode Required(string field) =>
        row.TryGetPropertyValue(field, out var node)
            ? node ?? throw new BadRowException($"field {Name(field)} is null")
            : throw new BadRowException($"missing field {Name(field)}");

    public string String(string field, bool allowEmpty = false) => AsString(Required(field), Name(field), allowEmpty);

    private static string AsString(JsonNode node, string what, bool allowEmpty)
    {
        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
            throw new BadRowException($"field {what} must be a string, got {DatasetReader.Kind(node)}");
        string s = v.GetValue<string>();
        if (s.Length > DatasetLoader.MaxFieldChars)
            throw new BadRowException($"field {what} has {s.Length:N0} characters, over the limit of {DatasetLoader.MaxFieldChars:N0}");
        if (!allowEmpty && s.Length == 0) throw new BadRowException($"field {what} is an empty string");
        return s;
    }

    /// <summary>A JSON array, or (CSV) a string holding one.</summary>
    private JsonArray Array(string field)
    {
        var node = Required(field);
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            try { node = JsonNode.Parse(v.GetValue<string>())!; }
            catch (JsonException) { throw new BadRowException($"field {Name(field)} must be a list, got a string that is not a JSON list"); }
        }
        return node as JsonArray ?? throw new BadRowException($"field {Name(field)} must be a list, got {DatasetReader.Kind(node)}");
    }

    public List<string> StringList(string field)
    {
        var array = Array(field);
        var list = new List<string>();
        for (int i = 0; i < array.Count; i++)
            list.Add(AsString(array[i] ?? throw new BadRowException($"field {Name(field)}[{i}] is null"), $"{Name(field)}[{i}]", allowEmpty: false));
        return list;
    }

    public List<int> IntList(string field)
    {
        var array = Array(field);
        var list = new List<int>();
        for (int i = 0; i < array.Count; i++)
        {
            // The value may be backed by an int, a long (Parquet) or a JsonElement: read its JSON text.
            if (array[i] is JsonValue v && v.GetValueKind() == JsonValueKind.Number
                && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out double x)
                && x == Math.Floor(x) && Math.Abs(x) < int.MaxValue) list.Add((int)x);
            else throw new BadRowException($"field {Name(field)}[{i}] must be an integer, got {DatasetReader.Kind(array[i])}");
        }
        return list;
    }

    /// <summary>
    /// Step labels as probabilities of a good step: true/false, PRM800K ratings (+1 → 1; 0 and −1 → 0, as TRL's
    /// <c>examples/datasets/prm800k.py</c>), or a soft label in [0, 1] (Math-Shepherd).
    /// </summary>
    public List<double> StepLabels(string field)
    {
        var array = Array(field);
        var list = new List<double>();
        for (int i = 0; i < array.Count; i++)
        {
            var node = array[i];
            if (node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False) { list.Add(v.GetValueKind() == JsonValueKind.True ? 1 : 0); continue; }
            if (node is JsonValue n && n.GetValueKind() == JsonValueKind.Number
                && double.TryParse(n.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && x >= -1 && x <= 1)
            {
                // −1 and 0 are PRM800K's bad and neutral steps; (0, 1] a soft label (1 also PRM800K's good step).
                list.Add(Math.Max(0, x));
                continue;
            }
            throw new BadRowException($"field {Name(field)}[{i}] must be true/false, a PRM800K rating (-1, 0, 1) or a soft label in [0, 1], got {node?.ToJsonString() ?? "null"}");
        }
        return list;
    }

    public bool Bool(string field)
    {
        var node = Required(field);
        if (node is JsonValue v)
        {
            switch (v.GetValueKind())
            {
                case JsonValueKind.True: return true;
                case JsonValueKind.False: return false;
                case JsonValueKind.Number when v.ToJsonString() is "0" or "1": return v.ToJsonString() == "1";
                case JsonValueKind.String:
                    switch (v.GetValue<string>().Trim().ToLowerInvariant())
                    {
                        case "true" or "1": return true;
                        case "false" or "0": return false;
                    }
                    break;
            }
        }
        throw new BadRowException($"field {Name(field)} must be true or false, got {node.ToJsonString()}");
    }

    /// <summary>A string field that may be absent or null (then null).</summary>
    public string? OptionalString(string field) =>
        row.TryGetPropertyValue(field, out var node) && node is not null ? AsString(node, Name(field), allowEmpty: true) : null;

    public double? OptionalNumber(string field)
    {
        if (!row.TryGetPropertyValue(field, out var node) || node is null) return null;
        double x;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number) x = double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture);
        else if (node is JsonValue s && s.GetValueKind() == JsonValueKind.String)
        {
            string text = s.GetValue<string>().Trim();
            if (text.Length == 0) return null;
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out x))
                throw new BadRowException($"field {Name(field)} must be a number, got \"{text}\"");
        }
        else throw new BadRowException($"field {Name(field)} must be a number, got {DatasetReader.Kind(node)}");
        if (!double.IsFinite(x)) throw new BadRowException($"field {Name(field)} must be a finite number");
        return x;
    }

    public List<ChatMessage> Messages(string field)
    {
        var array = Array(field);
        if (array.Count == 0) throw new BadRowException($"field {Name(field)} is an empty list");
        var messages = new List<ChatMessage>();
        for (int i = 0; i < array.Count; i++)
        {
            string at = $"{Name(field)}[{i}]";
            if (array[i] is not JsonObject m) throw new BadRowException($"field {at} must be an object with role and content, got {DatasetReader.Kind(array[i])}");
            if (!m.TryGetPropertyValue("role", out var role) || role is null) throw new BadRowException($"field {at} has no \"role\"");
            if (!m.TryGetPropertyValue("content", out var content) || content is null) throw new BadRowException($"field {at} has no \"content\"");
            string r = AsString(role, $"{at}.role", allowEmpty: false);
            if (r is not ("system" or "user" or "assistant"))
                throw new BadRowException($"field {at}.role is \"{r}\"; expected system, user or assistant");
            messages.Add(new ChatMessage(r, AsString(content, $"{at}.content", allowEmpty: r != "assistant")));
        }
        return messages;
    }
}
