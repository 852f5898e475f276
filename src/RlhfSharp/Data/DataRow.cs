using System.Text.Json.Nodes;

namespace RlhfSharp.Data;

/// <summary>
/// One raw row of a dataset file, before its format is known. Either <see cref="Fields"/> is set, or
/// <see cref="Error"/> says why the row could not be read (invalid JSON, invalid UTF-8, not an object).
/// </summary>
/// <param name="File">The path as given.</param>
/// <param name="Line">1-based: the line where the row starts (.jsonl, .json, .csv) or the row number (.parquet).</param>
/// <param name="Fields">The row as a JSON object (CSV values are strings); null when unreadable.</param>
/// <param name="Error">Why the row could not be read; null when it was.</param>
public sealed record DataRow(string File, long Line, JsonObject? Fields, string? Error = null)
{
    /// <summary>"file:line", the prefix of every error about this row.</summary>
    public string Where => $"{File}:{Line}";
}
