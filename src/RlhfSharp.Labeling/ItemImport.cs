using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Data;

namespace RlhfSharp.Labeling;

/// <summary>
/// Adds items from a dataset file (any format <see cref="DatasetReader"/> reads): each row's <c>prompt</c> with its
/// candidates from <c>responses</c> (a list), <c>chosen</c> + <c>rejected</c>, or <c>completion</c> (one response, or
/// the draft of a demonstration). A row without candidates becomes a demonstration item. A bad row stops the import
/// with its file:line; rows already imported are skipped, so a file can be imported again after a fix.
/// </summary>
public static class ItemImport
{
    /// <returns>Items added, and rows that were already in the database.</returns>
    public static (int Added, int Existing) Import(LabelStore store, string path, LabelTask? task, int labelsWanted)
    {
        int added = 0, existing = 0;
        foreach (var row in DatasetReader.Read(path))
        {
            if (row.Error is not null) throw new RlhfException($"{row.Where}: {row.Error}");
            try
            {
                var (prompt, responses) = Read(row.Fields!);
                var kind = task ?? (responses.Count == 0 ? LabelTask.Demonstrate : responses.Count == 2 ? LabelTask.Pair : responses.Count == 1 ? LabelTask.Rate : LabelTask.Rank);
                if (store.AddItem(prompt, responses, kind, labelsWanted, "import")) added++; else existing++;
            }
            catch (RlhfException e) { throw new RlhfException($"{row.Where}: {e.Message}", e); }
        }
        return (added, existing);
    }

    static (string Prompt, List<string> Responses) Read(JsonObject row)
    {
        string prompt = Text(row, "prompt") ?? throw new RlhfException("missing field \"prompt\"");
        if (prompt.Trim().Length == 0) throw new RlhfException("field \"prompt\" is empty");
        if (row["responses"] is JsonNode list)
        {
            if (list is not JsonArray array) throw new RlhfException("field \"responses\" must be a list of strings");
            return (prompt, array.Select((x, i) => x is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
                : throw new RlhfException($"field \"responses\"[{i}] must be a string")).ToList());
        }
        if (row.ContainsKey("chosen") || row.ContainsKey("rejected"))
            return (prompt, [Text(row, "chosen") ?? throw new RlhfException("missing field \"chosen\""), Text(row, "rejected") ?? throw new RlhfException("missing field \"rejected\"")]);
        return (prompt, Text(row, "completion") is string c ? [c] : []);
    }

    static string? Text(JsonObject row, string field) => row[field] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw new RlhfException($"field \"{field}\" must be a string"),
    };
}
