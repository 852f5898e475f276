using System.Globalization;

namespace RlhfSharp.Rewards;

/// <summary>
/// The VADER sentiment lexicon (Hutto &amp; Gilbert, ICWSM 2014): 7,520 tokens, each with the mean of 10 human
/// valence ratings on −4 … +4. Two measures: <see cref="MeanValencePerWord"/> (the kindness grading measure) and
/// <see cref="Compound"/> (VADER's normalised sentence score, rebuilt from the paper).
/// </summary>
public sealed class VaderLexicon
{
    // Values from the VADER paper's rules as its reference implementation parameterises them: a negated word keeps
    // 74% of its strength with the opposite sign; a booster adds 0.293 to the magnitude; each "!" adds 0.292.
    internal const double NegationScalar = -0.74;
    internal const double BoosterIncrement = 0.293;
    internal const double ExclamationIncrement = 0.292;
    internal const int MaxExclamations = 4;
    /// <summary>α in x/√(x²+α): the normalisation that maps a summed valence into (−1, 1).</summary>
    public const double Alpha = 15;

    /// <summary>Words that negate a lexicon word up to 3 words later (plus any word ending in <c>n't</c>).</summary>
    public static IReadOnlySet<string> Negators { get; } = new HashSet<string>
    {
        "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "cannot", "without",
        "dont", "cant", "wont", "didnt", "doesnt", "isnt", "wasnt", "arent", "werent", "aint", "couldnt",
        "shouldnt", "wouldnt", "havent", "hasnt", "hadnt", "mustnt", "neednt",
    };

    /// <summary>
    /// Degree modifiers: +1 intensifies, −1 dampens. Written for this project (not VADER's list); "little" and
    /// "just" are deliberately absent because stories use them as plain words ("a little girl").
    /// </summary>
    public static IReadOnlyDictionary<string, int> Boosters { get; } = new Dictionary<string, int>
    {
        ["absolutely"] = 1, ["amazingly"] = 1, ["completely"] = 1, ["deeply"] = 1, ["enormously"] = 1,
        ["entirely"] = 1, ["especially"] = 1, ["exceptionally"] = 1, ["extremely"] = 1, ["fully"] = 1,
        ["greatly"] = 1, ["highly"] = 1, ["hugely"] = 1, ["incredibly"] = 1, ["intensely"] = 1, ["more"] = 1,
        ["most"] = 1, ["particularly"] = 1, ["really"] = 1, ["remarkably"] = 1, ["so"] = 1, ["super"] = 1,
        ["thoroughly"] = 1, ["totally"] = 1, ["tremendously"] = 1, ["truly"] = 1, ["utterly"] = 1, ["very"] = 1,
        ["almost"] = -1, ["barely"] = -1, ["hardly"] = -1, ["less"] = -1, ["marginally"] = -1, ["partly"] = -1,
        ["scarcely"] = -1, ["slightly"] = -1, ["somewhat"] = -1, ["kinda"] = -1, ["sorta"] = -1,
    };

    readonly Dictionary<string, double> valences;

    VaderLexicon(Dictionary<string, double> valences, int entries)
    {
        this.valences = valences;
        Entries = entries;
    }

    /// <summary>Lines read (7,520 for the shipped file).</summary>
    public int Entries { get; }

    /// <summary>
    /// Distinct tokens (7,506 for the shipped file: 14 tokens, all emoticons or slang such as <c>ok</c>, <c>lol</c>, <c>fav</c>,
    /// are rated twice; the later line wins, as when the file is read into a dictionary line by line).
    /// </summary>
    public int Count => valences.Count;

    /// <summary>The shipped lexicon: <c>data/vader/vader_lexicon.txt</c> next to the application.</summary>
    public static string DefaultPath => Path.Combine(AppContext.BaseDirectory, "data", "vader", "vader_lexicon.txt");

    static readonly Lazy<VaderLexicon> shipped = new(() => Load(DefaultPath));

    /// <summary>The shipped lexicon, loaded once.</summary>
    public static VaderLexicon Default => shipped.Value;

    /// <summary>Reads <c>token TAB mean_valence TAB std TAB ratings</c> lines.</summary>
    public static VaderLexicon Load(string path)
    {
        var valences = new Dictionary<string, double>(StringComparer.Ordinal);
        int entries = 0;
        foreach (var (token, valence) in LexiconFile.Read(path, "VADER lexicon", "token<TAB>mean_valence<TAB>…"))
        {
            entries++;
            valences[token] = valence;
        }
        return new VaderLexicon(valences, entries);
    }

    /// <summary>
    /// The valence of one lower-case word, or null. A possessive not in the lexicon falls back to its stem
    /// (<c>friend's</c> → <c>friend</c>).
    /// </summary>
    public double? Valence(string word)
    {
        if (valences.TryGetValue(word, out double v)) return v;
        if (word.EndsWith("'s", StringComparison.Ordinal) && valences.TryGetValue(word[..^2], out v)) return v;
        return null;
    }

    /// <summary>
    /// Sum of the valences of the lexicon words in <paramref name="text"/> divided by the number of all its words
    /// (<see cref="Words.Tokenize"/>); 0 for text without words. No rules (negation, boosters) are applied.
    /// </summary>
    /// <remarks>
    /// Unlike <see cref="Compound"/> it does not saturate: a story gets more credit for every additional kind word
    /// relative to its length, so there is room to improve (base samples sit well inside its range), and it cannot
    /// be raised by making the story longer.
    /// </remarks>
    public double MeanValencePerWord(string text)
    {
        var words = Words.Tokenize(text);
        if (words.Length == 0) return 0;
        double sum = 0;
        foreach (var w in words) sum += Valence(w) ?? 0;
        return sum / words.Length;
    }

    /// <summary>
    /// VADER's compound score in (−1, 1), rebuilt from Hutto &amp; Gilbert (2014) §"Heuristics" over the whole text:
    /// <list type="number">
    /// <item>each lexicon word contributes its valence; negators and boosters are modifiers and contribute nothing themselves;</item>
    /// <item>a booster among the 3 preceding words adds ±0.293 in the direction of the word's valence (×0.95 when it is
    /// two words back, ×0.9 three back); a dampener subtracts it;</item>
    /// <item>a negator (<see cref="Negators"/> or any <c>…n't</c>) among the 3 preceding words multiplies by −0.74;</item>
    /// <item>"but": with a <c>but</c> in the text, words before the first one count ×0.5 and words after it ×1.5;</item>
    /// <item>each "!" (at most 4) adds 0.292 to the sum's magnitude;</item>
    /// <item>the sum x becomes x/√(x²+15).</item>
    /// </list>
    /// Left out (not recoverable from the paper alone, or not useful for stories): ALL-CAPS emphasis, "?" emphasis,
    /// emoticons and multi-word lexicon entries (<c>can't stand</c>), the special cases "never so/this",
    /// "least", "kind of", "no" used as a valence word, and splitting into sentences (VADER scores one sentence;
    /// here the whole text is one unit).
    /// </summary>
    public double Compound(string text)
    {
        var words = Words.Tokenize(text);
        var sentiments = new double[words.Length];
        for (int i = 0; i < words.Length; i++)
        {
            string w = words[i];
            if (IsNegator(w) || Boosters.ContainsKey(w)) continue;
            if (Valence(w) is not double v) continue;
            for (int k = 1; k <= 3 && i - k >= 0; k++)
                if (Boosters.TryGetValue(words[i - k], out int direction))
                    v += direction * BoosterIncrement * Math.Sign(v) * (k == 1 ? 1.0 : k == 2 ? 0.95 : 0.9);
            for (int k = 1; k <= 3 && i - k >= 0; k++)
                if (IsNegator(words[i - k])) { v *= NegationScalar; break; }
            sentiments[i] = v;
        }

        int but = Array.IndexOf(words, "but");
        double sum = 0;
        for (int i = 0; i < words.Length; i++)
            sum += but < 0 ? sentiments[i] : i < but ? 0.5 * sentiments[i] : i > but ? 1.5 * sentiments[i] : 0;

        int exclamations = Math.Min(text.Count(c => c == '!'), MaxExclamations);
        if (sum != 0) sum += Math.Sign(sum) * exclamations * ExclamationIncrement;
        return Normalise(sum);
    }

    /// <summary>x/√(x²+α), VADER's map of a summed valence into (−1, 1).</summary>
    public static double Normalise(double x) => x / Math.Sqrt(x * x + Alpha);

    static bool IsNegator(string w) => Negators.Contains(w) || w.EndsWith("n't", StringComparison.Ordinal);
}
