namespace RlhfSharp.Evaluation;

/// <summary>
/// Word n-gram counting shared by BLEU, distinct-n and self-BLEU. An n-gram is its tokens joined by U+001F (unit
/// separator), which cannot occur inside a token from any of the tokenizers here, so joined keys never collide.
/// </summary>
public static class NGrams
{
    /// <summary>The separator between the tokens of an n-gram key.</summary>
    public const char Separator = '\u001f';

    /// <summary>Counts every n-gram of orders <paramref name="minOrder"/>..<paramref name="maxOrder"/>.</summary>
    public static Dictionary<string, int> Count(IReadOnlyList<string> tokens, int minOrder, int maxOrder)
    {
        var counts = new Dictionary<string, int>();
        for (int n = minOrder; n <= maxOrder; n++)
            for (int i = 0; i + n <= tokens.Count; i++)
            {
                var key = string.Join(Separator, Enumerable.Range(i, n).Select(k => tokens[k]));
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        return counts;
    }

    /// <summary>The order of an n-gram key made by <see cref="Count"/>.</summary>
    public static int Order(string key) => key.Count(ch => ch == Separator) + 1;
}
