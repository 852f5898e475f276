using System.Text;

namespace RlhfSharp.Data;

/// <summary>
/// RFC 4180 CSV: comma-separated fields, double-quoted fields may hold commas, quotes (doubled) and line breaks.
/// Written here (30 lines) so each record knows the line it starts on.
/// </summary>
internal static class CsvParser
{
    /// <summary>Records with the 1-based line each starts on; <c>Error</c> is set for a record that cannot be parsed.</summary>
    public static IEnumerable<(long Line, List<string>? Fields, string? Error)> Parse(IEnumerable<(long Line, string? Text)> lines)
    {
        List<string>? fields = null;
        var field = new StringBuilder();
        bool inQuotes = false;
        long startLine = 0;
        foreach (var (number, text) in lines)
        {
            if (text is null)
            {
                // The record this line belongs to is lost; resynchronise on the next line.
                yield return (inQuotes ? startLine : number, null, $"line {number} is not valid UTF-8");
                fields = null; inQuotes = false; field.Clear();
                continue;
            }
            if (fields is null)
            {
                if (text.Length == 0) continue;
                fields = []; startLine = number;
            }
            else field.Append('\n'); // a line break inside quotes
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (inQuotes)
                {
                    if (c != '"') field.Append(c);
                    else if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                    else inQuotes = false;
                }
                else if (c == '"' && field.Length == 0) inQuotes = true;
                else if (c == ',') { fields.Add(field.ToString()); field.Clear(); }
                else field.Append(c);
            }
            if (inQuotes) continue;
            fields.Add(field.ToString());
            field.Clear();
            yield return (startLine, fields, null);
            fields = null;
        }
        if (fields is not null) yield return (startLine, null, "unterminated quoted field");
    }
}
