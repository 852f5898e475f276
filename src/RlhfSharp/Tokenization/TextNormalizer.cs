using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace RlhfSharp.Tokenization;

/// <summary>
/// The <c>normalizer</c> of a <c>tokenizer.json</c>, as HF tokenizers applies it
/// (<c>tokenizers/src/normalizers/</c>): Unicode NFC/NFD/NFKC/NFKD, Lowercase, Replace, Prepend, Strip, SentencePiece's
/// Precompiled charsmap (<see cref="PrecompiledCharsmap"/>) and a Sequence of them. It runs on each stretch of text between added tokens, before the pre-tokenizer.
/// </summary>
internal static class TextNormalizer
{
    /// <summary>The normalizer described by <paramref name="node"/>, or null when there is none.</summary>
    /// <exception cref="RlhfException">A type this library does not implement; the message names it and the file.</exception>
    public static Func<string, string>? Create(JsonNode? node, string path)
    {
        if (node is not JsonObject obj) return null;
        var type = (string?)obj["type"];
        switch (type)
        {
            case "Sequence":
                var parts = (obj["normalizers"] as JsonArray ?? []).Select(n => Create(n, path)).OfType<Func<string, string>>().ToArray();
                return text => parts.Aggregate(text, (t, f) => f(t));
            case "NFC": return text => text.Normalize(NormalizationForm.FormC);
            case "NFD": return text => text.Normalize(NormalizationForm.FormD);
            case "NFKC": return text => text.Normalize(NormalizationForm.FormKC);
            case "NFKD": return text => text.Normalize(NormalizationForm.FormKD);
            case "Lowercase": return text => text.ToLowerInvariant();
            case "Prepend":
                var prefix = (string?)obj["prepend"] ?? "";
                // normalizers/prepend_append.rs: nothing is prepended to an empty string.
                return text => text.Length == 0 ? text : prefix + text;
            case "Replace":
                var content = (string?)obj["content"] ?? "";
                var regex = PatternOf(obj["pattern"], path, "normalizer Replace");
                return text => regex.Replace(text, content.Replace("$", "$$"));
            case "Precompiled":
                // Some converted files carry no charsmap (SentencePiece's "identity" rule): nothing to apply.
                if (obj["precompiled_charsmap"] is not JsonValue charsmap || (string?)charsmap is not { Length: > 0 } base64) return null;
                return PrecompiledCharsmap.FromBase64(base64, path).Normalize;
            case "Strip":
                bool left = (bool?)obj["strip_left"] ?? true, right = (bool?)obj["strip_right"] ?? true;
                return text => left && right ? text.Trim() : left ? text.TrimStart() : right ? text.TrimEnd() : text;
            default:
                throw new RlhfException($"{path}: normalizer type \"{type}\" is not supported (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Precompiled)");
        }
    }

    /// <summary>A tokenizer.json pattern: <c>{"String": s}</c> (literal) or <c>{"Regex": r}</c>.</summary>
    public static Regex PatternOf(JsonNode? pattern, string path, string where)
    {
        if (pattern?["String"] is JsonValue s) return new Regex(Regex.Escape((string)s!), RegexOptions.CultureInvariant);
        if (pattern?["Regex"] is JsonValue r)
        {
            try { return new Regex((string)r!, RegexOptions.CultureInvariant); }
            catch (ArgumentException e) { throw new RlhfException($"{path}: {where} regex cannot be read: {e.Message}", e); }
        }
        throw new RlhfException($"{path}: {where} has no pattern (expected {{\"String\": ...}} or {{\"Regex\": ...}})");
    }
}
