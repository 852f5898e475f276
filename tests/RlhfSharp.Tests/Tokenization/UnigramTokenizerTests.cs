using System.Text.Json.Nodes;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// SentencePiece Unigram tokenizer.json files (T5, FLAN-T5, Pegasus). The real Pegasus file is checked against
/// tokenizers.js (fixtures/tokenizers/tokenizersjs/expected-unigram.mjs wrote expected/pegasus.json); byte fallback and
/// unknown fusing, which that file does not reach, against the worked examples of HF tokenizers' own tests
/// (tokenizers/src/models/unigram/model.rs: test_encode, test_unigram_bytefallback).
/// </summary>
public sealed class UnigramTokenizerTests : IDisposable
{
    private readonly RealTokenizerFiles _files = new();
    private readonly TempDir _dir = new();
    public void Dispose() { _files.Dispose(); _dir.Dispose(); }

    private static JsonNode Expected() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(RealTokenizerFiles.FixtureDir, "expected", "pegasus.json")))!;

    [Fact]
    public void Pegasus_unigram_encodes_every_case_to_the_tokenizers_js_ids()
    {
        var expected = Expected();
        var tokenizer = HfTokenizer.Load(_files.Folder("pegasus"));
        int unk = (int)expected["unk_id"]!;
        var cases = expected["cases"]!.AsArray();
        Assert.True(cases.Count >= 25);
        foreach (var c in cases)
        {
            var text = (string)c!["text"]!;
            var ids = c["ids"]!.AsArray().Select(x => (int)x!).ToArray();
            var actual = tokenizer.EncodeWithSpecialTokens(text);
            Assert.True(ids.SequenceEqual(actual), $"{text}\nexpected {string.Join(",", ids)}\nactual   {string.Join(",", actual)}");
            // tokenizers.js names an unknown token by the text it covers; every other token by its piece.
            var tokens = c["tokens"]!.AsArray().Select(x => (string)x!).ToArray();
            for (int i = 0; i < ids.Length; i++)
                if (ids[i] != unk) Assert.Equal(tokens[i], tokenizer.IdToToken(ids[i]));
        }
    }

    [Fact]
    public void Pegasus_appends_eos_as_its_post_processor_does()
    {
        var tokenizer = HfTokenizer.Load(_files.Folder("pegasus"));
        Assert.True(tokenizer.AddEosToken);
        Assert.Equal(1, tokenizer.EosId);
        Assert.Equal(0, tokenizer.PadId);
        Assert.Null(tokenizer.BosId);
        foreach (var c in Expected()["cases"]!.AsArray())
            Assert.Equal(c!["ids_with_special"]!.AsArray().Select(x => (int)x!), [.. c["ids"]!.AsArray().Select(x => (int)x!), tokenizer.EosId!.Value]);
    }

    [Fact]
    public void Pegasus_decodes_with_and_without_skip_special_and_clean_up_as_tokenizers_js()
    {
        var tokenizer = HfTokenizer.Load(_files.Folder("pegasus"));
        foreach (var c in Expected()["cases"]!.AsArray())
        {
            var ids = c!["ids"]!.AsArray().Select(x => (int)x!).ToArray();
            Assert.Equal((string)c["decoded"]!, tokenizer.Decode(ids, skipSpecial: false, cleanUpTokenizationSpaces: false));
            Assert.Equal((string)c["decoded_skip_special_clean_up"]!, tokenizer.Decode(ids, skipSpecial: true, cleanUpTokenizationSpaces: true));
        }
    }

    [Fact]
    public void Precompiled_charsmap_maps_fullwidth_ligatures_and_odd_spaces_as_nmt_nfkc()
    {
        // SentencePiece's nmt_nfkc rules (data/nmt_nfkc.tsv): NFKC, plus U+3000 and U+00A0 become a space.
        var tokenizer = HfTokenizer.Load(_files.Folder("pegasus"));
        Assert.Equal(tokenizer.Encode("ABC fi 123 a b"), tokenizer.Encode("ＡＢＣ\u3000ﬁ\u00A0１２３ a\u3000b"));
    }

    private string UnigramFolder(JsonArray vocab, bool byteFallback)
    {
        var dir = Path.Combine(_dir.Path, Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var json = new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "Unigram", ["unk_id"] = 0, ["vocab"] = vocab, ["byte_fallback"] = byteFallback },
            ["added_tokens"] = new JsonArray(),
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        return dir;
    }

    private static JsonArray Vocab(params (string Piece, double Score)[] pieces) =>
        new(pieces.Select(p => (JsonNode)new JsonArray(p.Piece, p.Score)).ToArray());

    [Fact]
    public void Viterbi_takes_the_highest_scoring_segmentation_and_fuses_unknown_characters()
    {
        // model.rs test_encode: with these scores "abcd" is one piece.
        var tokenizer = HfTokenizer.Load(UnigramFolder(Vocab(("<unk>", 0), ("a", 0), ("b", 0), ("c", 0), ("d", 0),
            ("cd", 1), ("ab", 2), ("abc", 5), ("abcd", 10)), byteFallback: false));
        Assert.Equal([8], tokenizer.Encode("abcd"));
        // model.rs test_encode2 with fuse_unk: "xyz東京" has no piece, and is one unknown token.
        Assert.Equal([0], tokenizer.Encode("xyz東京"));
        Assert.Equal([0, 8, 0], tokenizer.Encode("xyabcdz"));
    }

    [Fact]
    public void Byte_fallback_spells_unknown_text_in_byte_pieces_unless_a_byte_is_missing()
    {
        // model.rs test_unigram_bytefallback.
        var tokenizer = HfTokenizer.Load(UnigramFolder(Vocab(("<unk>", 0), ("<0xC3>", -0.01), ("<0xA9>", -0.03)), byteFallback: true));
        Assert.Equal([1, 2], tokenizer.Encode("é"));
        Assert.Equal("é", tokenizer.Decode([1, 2]));
        // "?" has no byte piece, so the fused unknown "?é" is one unk.
        Assert.Equal([0], tokenizer.Encode("?é"));
    }
}
