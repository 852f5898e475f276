using System.Text;
using System.Text.Json.Nodes;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// Folders with only a SentencePiece <c>spiece.model</c> (T5, FLAN-T5, Pegasus), converted as transformers v4.44 does.
/// fixtures/tokenizers/pegasus-spm/spiece.model.gz is rebuilt by its generate.py from the real Pegasus tokenizer.json; the
/// expected ids are tokenizers.js's on that tokenizer.json (expected/pegasus.json) and SentencePiece's own (Debian's
/// python3-sentencepiece 0.1.97 on the spiece.model: pegasus-spm/expected-sentencepiece.json).
/// </summary>
public sealed class SpieceModelTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RealTokenizerFiles _files = new();
    public void Dispose() { _dir.Dispose(); _files.Dispose(); }

    private static string SpmDir => Path.Combine(RealTokenizerFiles.FixtureDir, "pegasus-spm");

    /// <summary>A folder with spiece.model and the given tokenizer_config.json (no tokenizer.json).</summary>
    private string Folder(string? tokenizerConfig, byte[]? model = null, string? modelConfig = null)
    {
        var dir = Path.Combine(_dir.Path, Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "spiece.model"), model ?? PegasusSpiece());
        if (tokenizerConfig is not null) File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig);
        if (modelConfig is not null) File.WriteAllText(Path.Combine(dir, "config.json"), modelConfig);
        return dir;
    }

    /// <summary>The fixture's spiece.model, unpacked.</summary>
    private static byte[] PegasusSpiece()
    {
        using var gz = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(SpmDir, "spiece.model.gz")), System.IO.Compression.CompressionMode.Decompress);
        using var bytes = new MemoryStream();
        gz.CopyTo(bytes);
        return bytes.ToArray();
    }

    /// <summary>The real Pegasus folder's tokenizer_config.json and special_tokens_map.json, with spiece.model in place of tokenizer.json.</summary>
    private string PegasusFolder()
    {
        var dir = Folder(File.ReadAllText(Path.Combine(RealTokenizerFiles.FixtureDir, "pegasus", "tokenizer_config.json")));
        File.Copy(Path.Combine(RealTokenizerFiles.FixtureDir, "pegasus", "special_tokens_map.json"), Path.Combine(dir, "special_tokens_map.json"));
        return dir;
    }

    private static JsonArray Cases(string file) => JsonNode.Parse(File.ReadAllText(file))!["cases"]!.AsArray();
    private static JsonArray TokenizersJsCases() => Cases(Path.Combine(RealTokenizerFiles.FixtureDir, "expected", "pegasus.json"));
    private static JsonArray SentencePieceCases() => Cases(Path.Combine(SpmDir, "expected-sentencepiece.json"));
    private static int[] Ids(JsonNode? array) => array!.AsArray().Select(x => (int)x!).ToArray();

    [Fact]
    public void Pegasus_spiece_model_encodes_every_case_to_the_tokenizers_js_ids_of_the_converted_file()
    {
        var tokenizer = HfTokenizer.Load(PegasusFolder());
        var cases = TokenizersJsCases();
        Assert.True(cases.Count >= 35);
        foreach (var c in cases)
        {
            var text = (string)c!["text"]!;
            var expected = Ids(c["ids"]);
            var actual = tokenizer.EncodeWithSpecialTokens(text);
            Assert.True(expected.SequenceEqual(actual), $"{text}\nexpected {string.Join(",", expected)}\nactual   {string.Join(",", actual)}");
            var tokens = c["tokens"]!.AsArray().Select(x => (string)x!).ToArray();
            for (int i = 0; i < expected.Length; i++)
                if (expected[i] != 105) Assert.Equal(tokens[i], tokenizer.IdToToken(expected[i])); // tokenizers.js names an unk by its text
        }
    }

    [Fact]
    public void Pegasus_spiece_model_gives_sentencepieces_own_ids_where_hf_does_not_differ()
    {
        var tokenizer = HfTokenizer.Load(PegasusFolder());
        var cases = SentencePieceCases();
        // The generator marks the cases where SentencePiece and HF part: only special tokens written in the text.
        var agreeing = cases.Where(c => (bool)c!["equals_tokenizers_js"]!).ToList();
        Assert.Equal(cases.Count - 4, agreeing.Count);
        foreach (var c in agreeing)
            Assert.Equal(Ids(c!["ids"]), tokenizer.EncodeWithSpecialTokens((string)c["text"]!));
    }

    [Fact]
    public void Pegasus_spiece_model_appends_eos_and_decodes_as_tokenizers_js()
    {
        var tokenizer = HfTokenizer.Load(PegasusFolder());
        Assert.True(tokenizer.AddEosToken);
        Assert.Equal((1, 0), (tokenizer.EosId, tokenizer.PadId));
        Assert.Null(tokenizer.BosId);
        foreach (var c in TokenizersJsCases())
        {
            var ids = Ids(c!["ids"]);
            int[] withEos = [.. ids, tokenizer.EosId!.Value];
            Assert.Equal(Ids(c["ids_with_special"]), withEos);
            Assert.Equal((string)c["decoded"]!, tokenizer.Decode(ids, skipSpecial: false, cleanUpTokenizationSpaces: false));
            Assert.Equal((string)c["decoded_skip_special_clean_up"]!, tokenizer.Decode(ids, skipSpecial: true, cleanUpTokenizationSpaces: true));
        }
    }

    [Fact]
    public void Pegasus_spiece_model_has_the_vocabulary_and_special_tokens_of_hfs_converted_tokenizer_json()
    {
        // PegasusConverter: <pad>, </s>, <mask_1>, <mask_2>, <unk_2>..<unk_102>, then the file's pieces from id 2 at id + 103.
        var fromSpm = HfTokenizer.Load(PegasusFolder());
        var fromJson = HfTokenizer.Load(_files.Folder("pegasus"));
        Assert.Equal(96103, fromSpm.VocabSize);
        Assert.Equal(fromJson.VocabSize, fromSpm.VocabSize);
        for (int id = 0; id < fromJson.VocabSize; id++) Assert.Equal(fromJson.IdToToken(id), fromSpm.IdToToken(id));
        Assert.Equal(fromJson.SpecialIds.Order(), fromSpm.SpecialIds.Order());
        // The added tokens of the real file, plus <n>: a USER_DEFINED piece, which v4.44's SpmConverter adds as a
        // non-special token (the older converter that wrote the real file did not).
        Assert.Equal(fromJson.AddedTokens.Append(new("<n>", 106)).OrderBy(kv => kv.Value), fromSpm.AddedTokens.OrderBy(kv => kv.Value));
    }

    [Fact]
    public void A_user_defined_piece_in_the_text_is_its_own_token_and_survives_skip_special()
    {
        // tokenizers.js on the real tokenizer.json with <n> added as SpmConverter adds a USER_DEFINED piece
        // (non-special, normalized: false): expected/pegasus-user-defined.json.
        var tokenizer = HfTokenizer.Load(PegasusFolder());
        var cases = Cases(Path.Combine(RealTokenizerFiles.FixtureDir, "expected", "pegasus-user-defined.json"));
        Assert.Equal(4, cases.Count);
        foreach (var c in cases)
        {
            var ids = Ids(c!["ids"]);
            Assert.Contains(106, ids);
            Assert.Equal(ids, tokenizer.EncodeWithSpecialTokens((string)c["text"]!));
            Assert.Equal((string)c["decoded_skip_special"]!, tokenizer.Decode(ids, skipSpecial: true, cleanUpTokenizationSpaces: false));
        }
    }

    [Fact]
    public void T5_class_keeps_the_files_ids_as_sentencepiece_numbers_them_and_appends_extra_ids_in_reverse()
    {
        // T5Converter: the file's pieces as they are, then <extra_id_99> .. <extra_id_0>; unk_id from the file.
        var tokenizer = HfTokenizer.Load(Folder("""{"tokenizer_class": "T5Tokenizer"}"""));
        Assert.Equal(96000 + 100, tokenizer.VocabSize);
        Assert.Equal("<extra_id_0>", tokenizer.IdToToken(96099));
        Assert.Equal("<extra_id_99>", tokenizer.IdToToken(96000));
        Assert.Equal((1, 0), (tokenizer.EosId, tokenizer.PadId));
        Assert.True(tokenizer.AddEosToken);
        foreach (var c in SentencePieceCases().Where(c => (bool)c!["equals_tokenizers_js"]!))
            Assert.Equal(Ids(c!["sentencepiece_ids"]), tokenizer.Encode((string)c["text"]!));
        // An extra id written in the text is a special token; the text around it is encoded as SentencePiece would.
        var hello = SentencePieceCases().First(c => (string)c!["text"]! == "Hello world")!;
        Assert.Equal([.. Ids(hello["sentencepiece_ids"])[..1], 96099, .. Ids(hello["sentencepiece_ids"])[1..]],
            tokenizer.EncodeWithSpecialTokens("Hello <extra_id_0> world"));
        Assert.Equal("Hello world", tokenizer.Decode(tokenizer.EncodeWithSpecialTokens("Hello <extra_id_0> world"), skipSpecial: true, cleanUpTokenizationSpaces: false));
    }

    [Fact]
    public void Config_model_type_picks_the_converter_when_tokenizer_config_names_no_class()
    {
        var t5 = HfTokenizer.Load(Folder(null, modelConfig: """{"model_type": "t5"}"""));
        Assert.Equal(96100, t5.VocabSize);
        var pegasus = HfTokenizer.Load(Folder(null, modelConfig: """{"model_type": "pegasus"}"""));
        Assert.Equal(96103, pegasus.VocabSize);
        Assert.Equal(Ids(TokenizersJsCases()[1]!["ids"]), pegasus.Encode((string)TokenizersJsCases()[1]!["text"]!));
    }

    [Fact]
    public void A_corrupt_spiece_model_is_refused_naming_the_file()
    {
        var real = PegasusSpiece();
        // Cut inside a piece, and cut right after the 63rd piece (before the trainer_spec).
        foreach (int length in new[] { 1001, 1000 })
        {
            var truncated = Folder("""{"tokenizer_class": "T5Tokenizer"}""", real[..length]);
            var e = Assert.Throws<RlhfException>(() => HfTokenizer.Load(truncated));
            Assert.Contains(Path.Combine(truncated, "spiece.model"), e.Message);
            Assert.Contains("not a SentencePiece model", e.Message);
        }
        var text = Folder("""{"tokenizer_class": "T5Tokenizer"}""", Encoding.UTF8.GetBytes("{\"not\": \"a protobuf\"}\n"));
        Assert.Contains("spiece.model", Assert.Throws<RlhfException>(() => HfTokenizer.Load(text)).Message);
    }

    [Fact]
    public void A_bpe_spiece_model_or_a_class_without_a_converter_here_is_refused_clearly()
    {
        var bpe = Folder("""{"tokenizer_class": "T5Tokenizer"}""", ModelProto([("<unk>", 0, 2), ("▁a", -1, 1)], modelType: 2));
        var e = Assert.Throws<RlhfException>(() => HfTokenizer.Load(bpe));
        Assert.Contains("spiece.model", e.Message);
        Assert.Contains("BPE", e.Message);
        var xlmr = Folder("""{"tokenizer_class": "XLMRobertaTokenizer"}""");
        Assert.Contains("XLMRobertaTokenizer", Assert.Throws<RlhfException>(() => HfTokenizer.Load(xlmr)).Message);
        var unknown = Folder(null);
        Assert.Contains("tokenizer_class", Assert.Throws<RlhfException>(() => HfTokenizer.Load(unknown)).Message);
    }

    [Fact]
    public void Generate_on_a_t5_folder_with_spiece_model_encodes_the_prompt_and_answers_as_with_its_tokenizer_json()
    {
        // Seq2SeqCliTests' tiny T5 folder, once with its tokenizer.json and once with the same vocabulary as spiece.model.
        var withJson = Seq2SeqCli(Path.Combine(_dir.Path, "json"));
        var withSpm = Seq2SeqCli(Path.Combine(_dir.Path, "spm"));
        var vocab = new List<(string, float, int)> { ("<pad>", 0, 3), ("</s>", 0, 3), ("<unk>", 0, 2) };
        for (int i = 3; i < 89; i++) vocab.Add(("▁" + (char)('a' + (i - 3) % 26) + (i - 3) / 26, -i / 10f, 1));
        File.Delete(Path.Combine(withSpm, "tokenizer.json"));
        File.WriteAllBytes(Path.Combine(withSpm, "spiece.model"), ModelProto(vocab, modelType: 1, unkId: 2));
        // T5Tokenizer's 100 extra ids would not fit this 89-id model.
        File.WriteAllText(Path.Combine(withSpm, "tokenizer_config.json"), """{"tokenizer_class": "T5Tokenizer", "extra_ids": 0}""");

        JsonNode Run(string folder, string promptOption, string prompt)
        {
            var r = RlhfSharp.Tests.Cli.RlhfProcess.Run("generate", "--model", folder, promptOption, prompt, "--max-new-tokens", "4", "--temperature", "0", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            return JsonNode.Parse(r.Stdout.Trim())!;
        }
        // The converted normalizer folds the space run and drops the trailing space.
        var spm = Run(withSpm, "--prompt", "a0  b0 c0 ");
        // ▁a0, ▁b0, ▁c0 are ids 3, 4, 5 of the vocabulary above; T5's post-processor appends </s> (1).
        Assert.Equal([3, 4, 5, 1], Ids(spm["ids"]));
        var json = Run(withJson, "--prompt-ids", "3,4,5,1");
        Assert.Equal(Ids(json["new_ids"]), Ids(spm["new_ids"]));
        Assert.Equal((string?)json["text"], (string?)spm["text"]);
    }

    private static string Seq2SeqCli(string root)
    {
        Directory.CreateDirectory(root);
        return RlhfSharp.Tests.Cli.Seq2SeqCliTests.T5Folder(root);
    }

    /// <summary>
    /// A ModelProto in protobuf wire format, field numbers from sentencepiece's src/sentencepiece_model.proto: pieces = 1
    /// (piece = 1, score = 2 as a 32-bit float, type = 3), trainer_spec = 2 (model_type = 3, unk_id = 40, bos_id = 41,
    /// eos_id = 42, pad_id = 43).
    /// </summary>
    private static byte[] ModelProto(IEnumerable<(string Piece, float Score, int Type)> pieces, int modelType, int unkId = 0)
    {
        var output = new List<byte>();
        void Varint(List<byte> to, long value)
        {
            ulong v = (ulong)value;
            do { byte b = (byte)(v & 0x7F); v >>= 7; to.Add(v != 0 ? (byte)(b | 0x80) : b); } while (v != 0);
        }
        void Field(List<byte> to, int field, int wire) => Varint(to, (field << 3) | wire);
        void Bytes(List<byte> to, int field, byte[] data) { Field(to, field, 2); Varint(to, data.Length); to.AddRange(data); }
        foreach (var (piece, score, type) in pieces)
        {
            var message = new List<byte>();
            Bytes(message, 1, Encoding.UTF8.GetBytes(piece));
            Field(message, 2, 5); message.AddRange(BitConverter.GetBytes(score));
            Field(message, 3, 0); Varint(message, type);
            Bytes(output, 1, [.. message]);
        }
        var trainer = new List<byte>();
        Field(trainer, 3, 0); Varint(trainer, modelType);
        Field(trainer, 40, 0); Varint(trainer, unkId);
        Field(trainer, 41, 0); Varint(trainer, -1);
        Field(trainer, 42, 0); Varint(trainer, 1);
        Field(trainer, 43, 0); Varint(trainer, 0);
        Bytes(output, 2, [.. trainer]);
        return [.. output];
    }
}
