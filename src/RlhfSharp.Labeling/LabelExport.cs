using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Labeling;

/// <summary>The files <c>rlhf label export</c> writes, named for what reads them.</summary>
public enum LabelExportFormat
{
    /// <summary><c>prompt, chosen, rejected</c> rows (<c>rlhf rm</c>, <c>rlhf dpo|ipo|orpo|simpo</c>): every pair a ranking implies, and every pair choice.</summary>
    Pairwise,
    /// <summary><c>prompt, responses, ranking</c> rows (<c>rlhf rm</c>'s K-wise loss): one per ranking (pair choices as K = 2).</summary>
    Kwise,
    /// <summary><c>prompt, completion</c> rows (<c>rlhf sft</c>): one per demonstration.</summary>
    Sft,
    /// <summary><c>prompt, completion, label</c> rows (<c>rlhf kto</c>): one per rated response that is clearly good or bad.</summary>
    Kto,
}

/// <summary>
/// Writes committed labels in the formats the training commands read (<see cref="RlhfSharp.Data.DatasetLoader"/>).
/// Every annotator's label is its own row, as InstructGPT trained on each labeller's comparisons; items labelled by
/// N annotators give N rows. Ties in pair items are left out: no preference format has a row for "neither is better".
/// The file appears whole or not at all (temp file + rename).
/// </summary>
public static class LabelExport
{
    /// <summary>Likert ratings at or above this are desirable for KTO, at or below <see cref="KtoUndesirableAtMost"/> undesirable; the middle is left out.</summary>
    public const int KtoDesirableAtLeast = 5, KtoUndesirableAtMost = 3;

    public static LabelExportFormat Parse(string name) => name.ToLowerInvariant() switch
    {
        "pairwise" => LabelExportFormat.Pairwise,
        "kwise" => LabelExportFormat.Kwise,
        "sft" => LabelExportFormat.Sft,
        "kto" => LabelExportFormat.Kto,
        _ => throw new RlhfException($"unknown export format \"{name}\"; use pairwise, kwise, sft or kto"),
    };

    /// <summary>The rows of <paramref name="format"/> for <paramref name="labels"/>.</summary>
    public static IEnumerable<JsonObject> Rows(IEnumerable<StoredLabel> labels, LabelExportFormat format)
    {
        foreach (var label in labels)
        {
            switch (format)
            {
                case LabelExportFormat.Pairwise when label.Order is { } order:
                    for (int i = 0; i < order.Count; i++)
                        for (int j = i + 1; j < order.Count; j++)
                            yield return new JsonObject { ["prompt"] = label.Prompt, ["chosen"] = label.Text(order[i]), ["rejected"] = label.Text(order[j]) };
                    break;
                case LabelExportFormat.Kwise when label.Order is { } order:
                    var ids = label.Responses.Select(r => r.Id).ToList();
                    yield return new JsonObject
                    {
                        ["prompt"] = label.Prompt,
                        ["responses"] = new JsonArray(label.Responses.Select(r => (JsonNode)r.Text).ToArray()),
                        ["ranking"] = new JsonArray(order.Select(id => (JsonNode)ids.IndexOf(id)).ToArray()),
                    };
                    break;
                case LabelExportFormat.Sft when label.Task == LabelTask.Demonstrate:
                    yield return new JsonObject { ["prompt"] = label.Prompt, ["completion"] = label.Body.Demonstration };
                    break;
                case LabelExportFormat.Kto when label.Task == LabelTask.Rate:
                    foreach (var rating in label.Body.Ratings!)
                    {
                        bool flagged = rating.Flags is { Length: > 0 };
                        bool? good = flagged || rating.Quality <= KtoUndesirableAtMost ? false : rating.Quality >= KtoDesirableAtLeast ? true : null;
                        if (good is bool g) yield return new JsonObject { ["prompt"] = label.Prompt, ["completion"] = label.Text(rating.ResponseId), ["label"] = g };
                    }
                    break;
            }
        }
    }

    /// <summary>Writes the rows as JSON Lines to <paramref name="path"/> and returns how many.</summary>
    public static int Write(IEnumerable<StoredLabel> labels, LabelExportFormat format, string path)
    {
        var options = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(folder)) throw new RlhfException($"{path}: the folder {folder} does not exist; create it or export elsewhere.");
        string temp = full + ".tmp-" + Environment.ProcessId;
        int count = 0;
        try
        {
            using (var writer = new StreamWriter(temp, false, new System.Text.UTF8Encoding(false)))
                foreach (var row in Rows(labels, format))
                {
                    writer.Write(row.ToJsonString(options));
                    writer.Write('\n');
                    count++;
                }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            // The OS message names the temporary file the user never asked for: name theirs instead.
            throw new RlhfException($"{path}: cannot write the export ({e.Message.Replace(temp, full)})", e);
        }
        return count;
    }
}
