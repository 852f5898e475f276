using System.Text.Json.Nodes;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// The real GPT-2 and Pythia tokenizer.json files (and GPT-2's vocabulary behind the Llama 3 / Qwen2 pre-tokenizers,
/// Digits, NFKC and extra added tokens) encode and decode exactly as tokenizers.js does. The expected values were
/// produced by fixtures/tokenizers/tokenizersjs/expected.mjs, not by this library.
/// </summary>
public sealed class TokenizersJsAgreementTests : IDisposable
{
    private readonly RealTokenizerFiles _files = new();
    public void Dispose() => _files.Dispose();

    public static TheoryData<string> Variants() =>
        ["gpt2", "pythia", "gpt2-llama3-regex-nfkc", "gpt2-qwen2-regex-nfc", "gpt2-digits", "gpt2-added-tokens"];

    private (HfTokenizer Tokenizer, JsonArray Cases) Load(string variant)
    {
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(RealTokenizerFiles.FixtureDir, "expected", variant + ".json")))!;
        var dir = _files.Folder((string)expected["base"]!, expected["patch"] as JsonObject);
        return (HfTokenizer.Load(dir), expected["cases"]!.AsArray());
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Encoding_with_added_tokens_in_text_gives_the_tokenizers_js_ids(string variant)
    {
        var (tokenizer, cases) = Load(variant);
        Assert.True(cases.Count >= 20);
        foreach (var c in cases)
        {
            var text = (string)c!["text"]!;
            var expected = c["ids"]!.AsArray().Select(x => (int)x!).ToArray();
            Assert.True(expected.SequenceEqual(tokenizer.EncodeWithSpecialTokens(text)),
                $"{variant}: {text}\nexpected {string.Join(",", expected)}\nactual   {string.Join(",", tokenizer.EncodeWithSpecialTokens(text))}");
            var tokens = c["tokens"]!.AsArray().Select(x => (string)x!).ToArray();
            Assert.Equal(tokens, expected.Select(tokenizer.IdToToken).ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Decoding_with_and_without_skip_special_and_clean_up_matches_tokenizers_js(string variant)
    {
        var (tokenizer, cases) = Load(variant);
        foreach (var c in cases)
        {
            var ids = c!["ids"]!.AsArray().Select(x => (int)x!).ToArray();
            Assert.Equal((string)c["decoded"]!, tokenizer.Decode(ids, skipSpecial: false, cleanUpTokenizationSpaces: false));
            Assert.Equal((string)c["decoded_skip_special_clean_up"]!, tokenizer.Decode(ids, skipSpecial: true, cleanUpTokenizationSpaces: true));
        }
    }
}
