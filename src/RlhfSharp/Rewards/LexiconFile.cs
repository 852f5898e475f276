using System.Globalization;

namespace RlhfSharp.Rewards;

/// <summary>
/// The tab-separated word lists the lexicons ship as (<c>term TAB score [TAB …]</c>): one entry per non-empty line,
/// with a malformed line reported by file and line number.
/// </summary>
public static class LexiconFile
{
    /// <param name="path">The list.</param>
    /// <param name="name">What the list is, for the not-found message ("VADER lexicon").</param>
    /// <param name="form">The expected line form, for the malformed-line message ("token&lt;TAB&gt;mean_valence&lt;TAB&gt;…").</param>
    /// <param name="columns">Exact column count, or null for "at least two".</param>
    public static IEnumerable<(string Term, double Score)> Read(string path, string name, string form, int? columns = null)
    {
        if (!File.Exists(path)) throw new RlhfException($"{name} not found: {path}.");
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0) continue;
            var cols = line.Split('\t');
            bool shapeOk = columns is int n ? cols.Length == n : cols.Length >= 2;
            if (!shapeOk || !double.TryParse(cols[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double score))
                throw new RlhfException($"{path}:{lineNo}: expected '{form}', got '{line}'.");
            yield return (cols[0], score);
        }
    }
}
