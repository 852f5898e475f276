using System.Text.RegularExpressions;
using RlhfSharp.Evaluation;

namespace RlhfSharp.Synthesis;

/// <summary>
/// Self-instruct's quality and novelty filters for machine-written instructions (Wang et al. 2022, §2.3, and
/// <c>self_instruct/bootstrap_instructions.py</c> in yizhongw/self-instruct): whitespace collapsed; 4 to 150 words;
/// no word a text-only model cannot act on (image, graph, file, map, draw, plot, "go to", …); not "Write a program…";
/// not starting with punctuation or a non-ASCII character; and ROUGE-L (rouge-score, no stemmer) below 0.7 to every
/// instruction already in the pool. The reference script drops a candidate whose best ROUGE-L is above 0.7; the paper
/// and this filter keep only those strictly below, which differ at exactly 0.7 only.
/// </summary>
public static partial class InstructionFilter
{
    /// <summary>Self-instruct's list of words that need images, files or the web (matched as whole words, ignoring case).</summary>
    public static readonly IReadOnlyList<string> Blacklist =
        ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw", "plot", "go to"];

    /// <summary>The paper's novelty threshold on ROUGE-L.</summary>
    public const double MaxRougeL = 0.7;

    [GeneratedRegex(@"\s+")] private static partial Regex Whitespace();
    [GeneratedRegex(@"(?:^|\n)\s*\d+\s*[.)]\s*")] private static partial Regex ListNumber();

    /// <summary>
    /// The instructions in a teacher's reply to the numbered-list prompt. The prompt ends in "N." so the reply's first
    /// item may come without a number (a completion model) or with one (a chat model): both are read.
    /// </summary>
    public static List<string> SplitList(string reply) =>
        ListNumber().Split("\n" + reply).Select(s => Whitespace().Replace(s, " ").Trim()).Where(s => s.Length > 0).ToList();

    /// <summary>Why <paramref name="instruction"/> fails the quality rules, or null if it passes them.</summary>
    public static string? QualityProblem(string instruction)
    {
        string s = Whitespace().Replace(instruction, " ").Trim();
        if (s.Length == 0) return "empty";
        int words = s.Split(' ').Length;
        if (words <= 3) return "too short (3 words or fewer)";
        if (words > 150) return "too long (over 150 words)";
        foreach (var w in Blacklist)
            if (Regex.IsMatch(s, $@"\b{Regex.Escape(w)}\b", RegexOptions.IgnoreCase)) return $"mentions '{w}'";
        if (s.StartsWith("Write a program", StringComparison.Ordinal)) return "asks for a program";
        if (char.IsPunctuation(s[0]) || char.IsSymbol(s[0])) return "starts with punctuation";
        if (s[0] > 127) return "starts with a non-ASCII character";
        return null;
    }

    /// <summary>The highest ROUGE-L F1 of <paramref name="instruction"/> against <paramref name="pool"/> (0 for an empty pool).</summary>
    public static double MaxSimilarity(string instruction, IEnumerable<string> pool) =>
        pool.Select(p => Rouge.L(p, instruction).FMeasure).DefaultIfEmpty(0).Max();
}
