using System.Text.RegularExpressions;

namespace RlhfSharp.Evaluation;

/// <summary>
/// The mteval-v13a tokenizer that sacreBLEU uses by default (<c>tokenizer_13a.py</c>): drop <c>&lt;skipped&gt;</c>,
/// join hyphenated line breaks, unescape four HTML entities, pad most punctuation with spaces, split periods and
/// commas off words unless they sit next to a digit, split a dash after a digit, then collapse whitespace.
/// BLEU numbers are only comparable across papers with the same tokenizer (Post 2018), hence this exact port.
/// </summary>
public static partial class Tokenizer13a
{
    // The four regexes of sacreBLEU's TokenizerRegexp, in order.
    [GeneratedRegex(@"([{-~\[-` -&(-+:-@/])")] private static partial Regex Punctuation();
    [GeneratedRegex(@"([^0-9])([\.,])")] private static partial Regex PeriodCommaAfterNonDigit();
    [GeneratedRegex(@"([\.,])([^0-9])")] private static partial Regex PeriodCommaBeforeNonDigit();
    [GeneratedRegex(@"([0-9])(-)")] private static partial Regex DashAfterDigit();

    /// <summary>Tokenizes one line and returns the tokens joined by single spaces.</summary>
    public static string Tokenize(string line)
    {
        line = line.Replace("<skipped>", "").Replace("-\n", "").Replace("\n", " ");
        if (line.Contains('&'))
            line = line.Replace("&quot;", "\"").Replace("&amp;", "&").Replace("&lt;", "<").Replace("&gt;", ">");
        line = $" {line} ";
        line = Punctuation().Replace(line, " $1 ");
        line = PeriodCommaAfterNonDigit().Replace(line, "$1 $2 ");
        line = PeriodCommaBeforeNonDigit().Replace(line, " $1 $2");
        line = DashAfterDigit().Replace(line, "$1 $2 ");
        return string.Join(' ', Split(line));
    }

    /// <summary>Python's <c>str.split()</c>: runs of whitespace separate, no empty tokens.</summary>
    public static string[] Split(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
}
