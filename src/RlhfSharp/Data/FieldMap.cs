using System.Text.Json.Nodes;

namespace RlhfSharp.Data;

/// <summary>
/// Renames a dataset's columns to the TRL field names before the format is detected, e.g.
/// <c>new FieldMap { PromptField = "question", CompletionField = "answer" }</c>. A null property keeps the TRL name.
/// </summary>
public sealed record FieldMap
{
    public string? TextField { get; init; }
    public string? MessagesField { get; init; }
    public string? PromptField { get; init; }
    public string? CompletionField { get; init; }
    public string? ChosenField { get; init; }
    public string? RejectedField { get; init; }
    public string? MarginField { get; init; }
    public string? ResponsesField { get; init; }
    public string? RankingField { get; init; }
    public string? LabelField { get; init; }

    /// <summary>The identity map.</summary>
    public static FieldMap None { get; } = new();

    private IEnumerable<(string Canonical, string? Source)> Pairs() =>
    [
        ("text", TextField), ("messages", MessagesField), ("prompt", PromptField), ("completion", CompletionField),
        ("chosen", ChosenField), ("rejected", RejectedField), ("margin", MarginField), ("responses", ResponsesField),
        ("ranking", RankingField), ("label", LabelField),
    ];

    /// <summary>The column name in the file for a TRL field name: how errors name a field.</summary>
    public string SourceName(string canonical) =>
        Pairs().FirstOrDefault(p => p.Canonical == canonical).Source ?? canonical;

    /// <summary>
    /// A copy of <paramref name="row"/> with mapped columns renamed. A mapped column replaces a TRL-named one, so
    /// <c>PromptField = "question"</c> on a file that also has "prompt" uses "question".
    /// </summary>
    public JsonObject Apply(JsonObject row)
    {
        var renames = Pairs().Where(p => p.Source is not null && p.Source != p.Canonical).ToList();
        if (renames.Count == 0) return row;
        var sources = renames.Select(r => r.Source!).ToHashSet();
        var canonicals = renames.Select(r => r.Canonical).ToHashSet();
        var result = new JsonObject();
        foreach (var (key, value) in row)
            if (!sources.Contains(key) && !canonicals.Contains(key)) result[key] = value?.DeepClone();
        foreach (var (canonical, source) in renames)
            if (row.TryGetPropertyValue(source!, out var value)) result[canonical] = value?.DeepClone();
        return result;
    }
}
