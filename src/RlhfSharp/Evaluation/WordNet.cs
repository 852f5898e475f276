using System.IO.Compression;

namespace RlhfSharp.Evaluation;

/// <summary>
/// WordNet 3.0's lemma index as NLTK's <c>wordnet.synsets(word)</c> uses it: lemma → synsets per part of speech, each
/// synset's lemma names, and morphy (NLTK's lemmatiser: exception lists, then suffix rules). Loaded from the compact
/// <c>data/wordnet/wordnet-3.0-lemmas.tsv.gz</c> that <c>data/wordnet/build_lemmas.py</c> derives (see its SOURCE.md).
/// </summary>
public sealed class WordNet
{
    /// <summary>NLTK's <c>POS_LIST</c>: the parts of speech <c>synsets(word)</c> searches, in its order.</summary>
    public static readonly char[] PartsOfSpeech = ['n', 'v', 'a', 'r'];

    // NLTK's MORPHOLOGICAL_SUBSTITUTIONS (WordNet's morph.c rules), in NLTK's order.
    static readonly Dictionary<char, (string Old, string New)[]> Substitutions = new()
    {
        ['n'] = [("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y")],
        ['v'] = [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
        ['a'] = [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
        ['r'] = [],
    };

    static readonly Lazy<WordNet> Shipped = new(() => Load(DefaultPath));

    readonly List<string[]> _synsetLemmas = [];
    readonly Dictionary<(char Pos, string Lemma), int[]> _index = [];
    readonly Dictionary<(char Pos, string Form), string[]> _exceptions = [];

    WordNet() { }

    /// <summary>The shipped file: <c>data/wordnet/wordnet-3.0-lemmas.tsv.gz</c> next to the application.</summary>
    public static string DefaultPath => Path.Combine(AppContext.BaseDirectory, "data", "wordnet", "wordnet-3.0-lemmas.tsv.gz");

    /// <summary>The shipped WordNet 3.0, loaded once on first use.</summary>
    public static WordNet Default => Shipped.Value;

    /// <summary>Number of synsets (all parts of speech).</summary>
    public int SynsetCount => _synsetLemmas.Count;

    /// <summary>Reads a file written by <c>build_lemmas.py</c> (gzip, or plain text if the name does not end in .gz).</summary>
    public static WordNet Load(string path)
    {
        if (!File.Exists(path)) throw new RlhfException($"WordNet: '{path}' does not exist (it ships as data/wordnet/wordnet-3.0-lemmas.tsv.gz).");
        var wordNet = new WordNet();
        using var file = File.OpenRead(path);
        using Stream text = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new StreamReader(text);
        int lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0 || line[0] == '#') continue;
            var fields = line.Split('\t');
            try
            {
                switch (fields[0])
                {
                    case "S" when fields.Length == 3:
                        wordNet._synsetLemmas.Add(fields[2].Split(' '));
                        break;
                    case "I" when fields.Length == 4 && fields[1].Length == 1:
                        var ids = fields[3].Split(' ').Select(int.Parse).ToArray();
                        if (ids.Any(id => id < 0 || id >= wordNet._synsetLemmas.Count)) throw new FormatException("synset id out of range");
                        wordNet._index[(fields[1][0], fields[2])] = ids;
                        break;
                    case "E" when fields.Length == 4 && fields[1].Length == 1:
                        wordNet._exceptions[(fields[1][0], fields[2])] = fields[3].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        break;
                    default:
                        throw new FormatException("expected S, I or E with its tab-separated fields");
                }
            }
            catch (FormatException e)
            {
                throw new RlhfException($"WordNet: {path} line {lineNumber}: {e.Message}.");
            }
        }
        return wordNet;
    }

    /// <summary>
    /// Synset ids of <paramref name="word"/>, as NLTK's <c>wordnet.synsets(word, pos)</c>: every part of speech in
    /// <see cref="PartsOfSpeech"/> order unless <paramref name="pos"/> (n, v, a, r) picks one.
    /// </summary>
    public IReadOnlyList<int> Synsets(string word, char? pos = null)
    {
        string lemma = word.ToLowerInvariant();
        var result = new List<int>();
        foreach (char p in pos is { } one ? [one] : PartsOfSpeech)
            foreach (var form in Morphy(lemma, p))
                result.AddRange(_index[(p, form)]);
        return result;
    }

    /// <summary>Lemma names of one synset as the data files spell them (multi-word lemmas joined by '_').</summary>
    public IReadOnlyList<string> LemmaNames(int synset) => _synsetLemmas[synset];

    /// <summary>
    /// NLTK's <c>_morphy</c>: the base forms of <paramref name="form"/> that WordNet lists under <paramref name="pos"/>
    /// (n, v, a, r). An exception-list entry decides alone; otherwise the form itself and one round of suffix rules,
    /// then further rounds until some form is found.
    /// </summary>
    public IReadOnlyList<string> Morphy(string form, char pos)
    {
        if (!Substitutions.TryGetValue(pos, out var rules)) throw new ArgumentException($"part of speech '{pos}' is not n, v, a or r", nameof(pos));
        if (_exceptions.TryGetValue((pos, form), out var bases)) return Known([form, .. bases], pos);
        var forms = ApplyRules([form], rules);
        var found = Known([form, .. forms], pos);
        while (found.Count == 0 && forms.Count > 0)
        {
            forms = ApplyRules(forms, rules);
            found = Known(forms, pos);
        }
        return found;
    }

    static List<string> ApplyRules(List<string> forms, (string Old, string New)[] rules) =>
        [.. from f in forms from r in rules where f.EndsWith(r.Old, StringComparison.Ordinal) select f[..^r.Old.Length] + r.New];

    List<string> Known(IEnumerable<string> forms, char pos) => [.. forms.Where(f => _index.ContainsKey((pos, f))).Distinct()];
}
