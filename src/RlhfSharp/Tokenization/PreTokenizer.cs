using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace RlhfSharp.Tokenization;

/// <summary>
/// The <c>pre_tokenizer</c> of a <c>tokenizer.json</c>: cuts normalized text into the words the BPE model merges
/// within, as HF tokenizers does (<c>tokenizers/src/pre_tokenizers/</c>). Supports ByteLevel, Split, Metaspace,
/// Digits, Punctuation, Whitespace, WhitespaceSplit and Sequence; the Llama 3 and Qwen2 patterns are Split regexes.
/// </summary>
/// <remarks>
/// .NET's Regex matches UTF-16 code units, where HF's Oniguruma matches code points: <c>\p{L}</c> does not match a
/// letter outside the Basic Multilingual Plane (a surrogate pair). Emoji are unaffected (they are neither letters nor
/// digits either way).
/// </remarks>
internal sealed class PreTokenizer
{
    /// <summary>GPT-2's split pattern, which HF's ByteLevel pre-tokenizer uses when <c>use_regex</c> is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly Regex Gpt2Regex = new(Gpt2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
    private static readonly Regex WhitespaceRegex = new(@"\w+|[^\w\s]+", RegexOptions.Compiled | RegexOptions.CultureInvariant);
    private static readonly string[] ByteToChar = BytesToUnicode();

    /// <summary>One step: pieces in, pieces out. <c>atTextStart</c> is true for the piece at offset 0 of the input.</summary>
    private delegate void Step(string piece, bool atTextStart, List<string> output);

    private readonly Step[] _steps;

    /// <summary>Whether the pipeline maps bytes to GPT-2's printable characters (a ByteLevel step).</summary>
    public bool IsByteLevel { get; }

    private PreTokenizer(Step[] steps, bool isByteLevel)
    {
        _steps = steps;
        IsByteLevel = isByteLevel;
    }

    /// <summary>The pre-tokenizer described by <paramref name="node"/> (null: the text is one word).</summary>
    /// <exception cref="RlhfException">A type or option this library does not implement, named with the file.</exception>
    public static PreTokenizer Create(JsonNode? node, string path)
    {
        var steps = new List<Step>();
        bool byteLevel = false;
        void Add(JsonNode? n)
        {
            if (n is not JsonObject obj) return;
            var type = (string?)obj["type"];
            switch (type)
            {
                case "Sequence":
                    foreach (var child in obj["pretokenizers"] as JsonArray ?? []) Add(child);
                    break;
                case "ByteLevel":
                    byteLevel = true;
                    steps.Add(ByteLevel((bool?)obj["add_prefix_space"] ?? true, (bool?)obj["use_regex"] ?? true));
                    break;
                case "Split":
                    var regex = TextNormalizer.PatternOf(obj["pattern"], path, "pre_tokenizer Split");
                    regex = new Regex(regex.ToString(), RegexOptions.Compiled | RegexOptions.CultureInvariant);
                    var behavior = BehaviorOf((string?)obj["behavior"], path);
                    bool invert = (bool?)obj["invert"] ?? false;
                    steps.Add((piece, _, output) => SplitBy(piece, RegexMatches(regex, piece), behavior, invert, output));
                    break;
                case "Metaspace":
                    steps.Add(Metaspace(obj, path));
                    break;
                case "Digits":
                    // pre_tokenizers/digits.rs: each digit alone, or runs of digits kept together.
                    bool individual = (bool?)obj["individual_digits"] ?? false;
                    steps.Add((piece, _, output) => SplitBy(piece, CharMatches(piece, IsNumeric),
                        individual ? Behavior.Isolated : Behavior.Contiguous, false, output));
                    break;
                case "Punctuation":
                    var punctuation = BehaviorOf((string?)obj["behavior"] ?? "Isolated", path);
                    steps.Add((piece, _, output) => SplitBy(piece, CharMatches(piece, IsPunctuation), punctuation, false, output));
                    break;
                case "WhitespaceSplit":
                    steps.Add((piece, _, output) => SplitBy(piece, CharMatches(piece, Rune.IsWhiteSpace), Behavior.Removed, false, output));
                    break;
                case "Whitespace":
                    steps.Add((piece, _, output) => SplitBy(piece, RegexMatches(WhitespaceRegex, piece), Behavior.Removed, true, output));
                    break;
                default:
                    throw new RlhfException($"{path}: pre_tokenizer type \"{type}\" is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit)");
            }
        }
        Add(node);
        return new PreTokenizer(steps.ToArray(), byteLevel);
    }

    /// <summary>Cuts <paramref name="text"/> into words; <paramref name="atTextStart"/> tells Metaspace "first" it is at offset 0.</summary>
    public List<string> Split(string text, bool atTextStart)
    {
        var pieces = new List<string> { text };
        foreach (var step in _steps)
        {
            var next = new List<string>(pieces.Count);
            for (int i = 0; i < pieces.Count; i++) step(pieces[i], atTextStart && i == 0, next);
            pieces = next;
        }
        return pieces;
    }

    /// <summary>The printable character GPT-2 uses for each byte (<c>bytes_to_unicode</c>).</summary>
    public static IReadOnlyList<string> ByteCharacters => ByteToChar;

    // pre_tokenizers/byte_level.rs: optional prefix space, the GPT-2 regex (Isolated), then each byte to its character.
    private static Step ByteLevel(bool addPrefixSpace, bool useRegex) => (piece, _, output) =>
    {
        if (addPrefixSpace && !piece.StartsWith(' ')) piece = " " + piece;
        var words = new List<string>();
        if (useRegex) SplitBy(piece, RegexMatches(Gpt2Regex, piece), Behavior.Isolated, false, words);
        else if (piece.Length > 0) words.Add(piece);
        foreach (var word in words)
        {
            var sb = new StringBuilder(word.Length);
            foreach (var b in Encoding.UTF8.GetBytes(word)) sb.Append(ByteToChar[b]);
            output.Add(sb.ToString());
        }
    };

    // pre_tokenizers/metaspace.rs: spaces become the replacement, which is prepended per prepend_scheme, and the
    // text is cut before each replacement (MergedWithNext) when split is true.
    private static Step Metaspace(JsonObject obj, string path)
    {
        var replacement = (string?)obj["replacement"] ?? "▁";
        if (replacement.Length != 1) throw new RlhfException($"{path}: Metaspace replacement \"{replacement}\" must be one character");
        char r = replacement[0];
        var scheme = (string?)obj["prepend_scheme"] ?? ((bool?)obj["add_prefix_space"] == false ? "never" : "always");
        bool split = (bool?)obj["split"] ?? true;
        return (piece, atTextStart, output) =>
        {
            piece = piece.Replace(' ', r);
            bool prepend = scheme switch { "always" => true, "first" => atTextStart, _ => false };
            if (prepend && !piece.StartsWith(r)) piece = r + piece;
            if (split) SplitBy(piece, CharMatches(piece, c => c.Value == r), Behavior.MergedWithNext, false, output);
            else if (piece.Length > 0) output.Add(piece);
        };
    }

    private enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

    private static Behavior BehaviorOf(string? name, string path) => name switch
    {
        "Removed" => Behavior.Removed,
        "Isolated" => Behavior.Isolated,
        "MergedWithPrevious" => Behavior.MergedWithPrevious,
        "MergedWithNext" => Behavior.MergedWithNext,
        "Contiguous" => Behavior.Contiguous,
        _ => throw new RlhfException($"{path}: split behavior \"{name}\" is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous"),
    };

    /// <summary>Regex matches and the gaps between them, covering the text (pattern.rs, <c>impl Pattern for Regex</c>).</summary>
    private static List<(int Start, int End, bool IsMatch)> RegexMatches(Regex regex, string text)
    {
        var result = new List<(int, int, bool)>();
        int previous = 0;
        for (var m = regex.Match(text); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0) continue;
            if (m.Index > previous) result.Add((previous, m.Index, false));
            result.Add((m.Index, m.Index + m.Length, true));
            previous = m.Index + m.Length;
        }
        if (previous < text.Length) result.Add((previous, text.Length, false));
        return result;
    }

    /// <summary>Each character that satisfies <paramref name="isMatch"/> is its own match (pattern.rs, <c>impl Pattern for Fn(char)</c>).</summary>
    private static List<(int Start, int End, bool IsMatch)> CharMatches(string text, Func<Rune, bool> isMatch)
    {
        var result = new List<(int, int, bool)>();
        int previous = 0;
        for (int i = 0; i < text.Length;)
        {
            var rune = Rune.GetRuneAt(text, i);
            int end = i + rune.Utf16SequenceLength;
            if (isMatch(rune))
            {
                if (i > previous) result.Add((previous, i, false));
                result.Add((i, end, true));
                previous = end;
            }
            i = end;
        }
        if (previous < text.Length) result.Add((previous, text.Length, false));
        return result;
    }

    /// <summary>Applies a split behaviour to matches, as <c>NormalizedString::split</c> does (normalizer.rs).</summary>
    private static void SplitBy(string text, List<(int Start, int End, bool IsMatch)> matches, Behavior behavior, bool invert, List<string> output)
    {
        if (invert) matches = matches.Select(m => (m.Start, m.End, !m.IsMatch)).ToList();
        var splits = new List<(int Start, int End, bool Remove)>();
        switch (behavior)
        {
            case Behavior.Isolated:
                splits.AddRange(matches.Select(m => (m.Start, m.End, false)));
                break;
            case Behavior.Removed:
                splits.AddRange(matches.Select(m => (m.Start, m.End, m.IsMatch)));
                break;
            case Behavior.Contiguous:
            {
                bool previousMatch = false;
                foreach (var m in matches)
                {
                    if (m.IsMatch == previousMatch && splits.Count > 0) splits[^1] = (splits[^1].Start, m.End, false);
                    else splits.Add((m.Start, m.End, false));
                    previousMatch = m.IsMatch;
                }
                break;
            }
            case Behavior.MergedWithPrevious:
            {
                bool previousMatch = false;
                foreach (var m in matches)
                {
                    if (m.IsMatch && !previousMatch && splits.Count > 0) splits[^1] = (splits[^1].Start, m.End, false);
                    else splits.Add((m.Start, m.End, false));
                    previousMatch = m.IsMatch;
                }
                break;
            }
            case Behavior.MergedWithNext:
            {
                bool previousMatch = false;
                for (int i = matches.Count - 1; i >= 0; i--)
                {
                    var m = matches[i];
                    if (m.IsMatch && !previousMatch && splits.Count > 0) splits[^1] = (m.Start, splits[^1].End, false);
                    else splits.Add((m.Start, m.End, false));
                    previousMatch = m.IsMatch;
                }
                splits.Reverse();
                break;
            }
        }
        foreach (var (start, end, remove) in splits)
            if (!remove && end > start) output.Add(text[start..end]);
    }

    // Rust's char::is_numeric: the Unicode categories Nd, Nl and No.
    private static bool IsNumeric(Rune c) => Rune.GetUnicodeCategory(c) is UnicodeCategory.DecimalDigitNumber
        or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    // pre_tokenizers/punctuation.rs: ASCII punctuation or any Unicode punctuation category (P*).
    private static bool IsPunctuation(Rune c) =>
        (c.IsAscii && char.IsAsciiLetterOrDigit((char)c.Value) == false && c.Value is > 32 and < 127)
        || Rune.GetUnicodeCategory(c) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    /// <summary>GPT-2's <c>bytes_to_unicode</c>: printable bytes stand for themselves, the other 68 for U+0100 onwards.</summary>
    private static string[] BytesToUnicode()
    {
        var map = new string[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = ((char)(printable ? b : next++)).ToString();
        }
        return map;
    }
}
