using System.Text.Json.Nodes;

namespace RlhfSharp.Data;

/// <summary>The row formats, named by the TRL field names that identify them (after a <see cref="FieldMap"/>).</summary>
public enum DatasetFormat
{
    /// <summary><c>text</c>: plain text for language modelling.</summary>
    Text,
    /// <summary><c>messages</c>: a list of <c>{role, content}</c> (TRL conversational).</summary>
    Messages,
    /// <summary><c>prompt</c> + <c>completion</c>.</summary>
    PromptCompletion,
    /// <summary><c>prompt</c> + <c>chosen</c> + <c>rejected</c> (optional <c>margin</c>).</summary>
    Preference,
    /// <summary><c>chosen</c> + <c>rejected</c> that contain the prompt, as HH-RLHF's dialogues do.</summary>
    ImplicitPreference,
    /// <summary><c>prompt</c> + <c>responses</c> + <c>ranking</c> (K-wise comparison).</summary>
    Ranking,
    /// <summary><c>prompt</c> alone.</summary>
    PromptOnly,
    /// <summary><c>prompt</c> + <c>completion</c> + <c>label</c> (KTO).</summary>
    Labeled,
}

/// <summary>Recognises a row's <see cref="DatasetFormat"/> from the fields it has.</summary>
public static class DatasetFormats
{
    /// <summary>
    /// The format of <paramref name="row"/> (already mapped), or null when no known field set is present. The most
    /// specific set wins: <c>messages</c>, then <c>chosen</c>/<c>rejected</c>, <c>responses</c>/<c>ranking</c>,
    /// <c>prompt</c>/<c>completion</c>/<c>label</c>, <c>prompt</c>/<c>completion</c>, <c>text</c>, <c>prompt</c>.
    /// </summary>
    public static DatasetFormat? Detect(JsonObject row)
    {
        bool Has(string key) => row.ContainsKey(key);
        if (Has("messages")) return DatasetFormat.Messages;
        if (Has("chosen") || Has("rejected")) return Has("prompt") ? DatasetFormat.Preference : DatasetFormat.ImplicitPreference;
        if (Has("responses") || Has("ranking")) return DatasetFormat.Ranking;
        if (Has("prompt") && Has("completion")) return Has("label") ? DatasetFormat.Labeled : DatasetFormat.PromptCompletion;
        if (Has("text")) return DatasetFormat.Text;
        if (Has("prompt")) return DatasetFormat.PromptOnly;
        return null;
    }
}
