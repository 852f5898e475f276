using System.Text.RegularExpressions;

namespace RlhfSharp.Rewards;

/// <summary>
/// Splits a story into sentences, the steps of a process reward model on the built-in task: a sentence ends after '.', '!'
/// or '?' (and any closing quotes) followed by whitespace, or at the end of the text. Returned as spans of the original
/// text, so the text up to any sentence is a prefix of the story.
/// </summary>
public static partial class Sentences
{
    [GeneratedRegex("[.!?]+[\"'”’)]*(?=\\s)")]
    private static partial Regex End();

    /// <summary>(start, length) of each sentence, surrounding whitespace excluded; none for blank text.</summary>
    public static List<(int Start, int Length)> Spans(string text)
    {
        var spans = new List<(int, int)>();
        int start = 0;
        void Add(int end)
        {
            int s = start;
            while (s < end && char.IsWhiteSpace(text[s])) s++;
            int e = end;
            while (e > s && char.IsWhiteSpace(text[e - 1])) e--;
            if (e > s) spans.Add((s, e - s));
        }
        foreach (Match m in End().Matches(text))
        {
            Add(m.Index + m.Length);
            start = m.Index + m.Length;
        }
        Add(text.Length);
        return spans;
    }

    /// <summary>The sentences' texts.</summary>
    public static List<string> Split(string text) => Spans(text).Select(s => text.Substring(s.Start, s.Length)).ToList();
}
