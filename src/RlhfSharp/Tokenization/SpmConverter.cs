using System.Text.Json.Nodes;

namespace RlhfSharp.Tokenization;

/// <summary>
/// transformers' slow→fast conversion of a SentencePiece Unigram <c>spiece.model</c> (v4.44
/// <c>convert_slow_tokenizer.py</c>: <c>SpmConverter</c> with its <c>T5Converter</c> and <c>PegasusConverter</c>
/// subclasses, plus the special tokens <c>PreTrainedTokenizerFast.__init__</c> adds from the slow tokenizer), written
/// as the <c>tokenizer.json</c> it produces. <see cref="HfTokenizer"/> then loads that object as any tokenizer.json, so a
/// folder with only <c>spiece.model</c> encodes exactly as the same folder with HF's converted file.
/// </summary>
/// <remarks>
/// Why not Microsoft.ML.Tokenizers' SentencePieceTokenizer (2.0.1 reads Unigram ModelProtos): measured on the Pegasus
/// fixture it fails to load a file whose <c>bos_id</c> is -1, as T5's and Pegasus's are (an IndexOutOfRangeException in
/// its SentencePieceUnigramModel constructor), and with bos_id patched to 1 it gives tokenizers.js's ids on 19 of 29
/// cases: it does not fuse neighbouring unknown characters into one unk as HF and SentencePiece do (6 cases), nor match
/// special tokens written in the text (4). Pegasus's id offset and T5's <c>&lt;extra_id_N&gt;</c> pieces are converter rules
/// it knows nothing of either. The project's Unigram model is already checked against tokenizers.js on the real Pegasus
/// tokenizer.json, so the converter feeds it.
/// <para>
/// As in v4.44: the Unigram model never uses byte fallback (<c>handle_byte_fallback</c> is false for these converters:
/// byte pieces stay ordinary pieces and unknown text becomes the unk id); CONTROL pieces become special added tokens and
/// USER_DEFINED pieces non-special ones (both <c>normalized: false</c>); the normalizer is the compiled charsmap, then
/// <c>Strip</c> on the right, then runs of two or more spaces become one <c>▁</c>; the Metaspace pre-tokenizer and decoder
/// prepend <c>▁</c> <c>"always"</c> (<c>"first"</c> when tokenizer_config.json sets <c>legacy: false</c>; <c>"never"</c>
/// with <c>add_prefix_space: false</c>), which v4.44 takes from the tokenizer class, not from the file's
/// <c>normalizer_spec.add_dummy_prefix</c>.
/// </para>
/// </remarks>
internal static class SpmConverter
{
    /// <summary>The tokenizer families whose converter is followed, by tokenizer_config <c>tokenizer_class</c> (without "Fast") or config.json <c>model_type</c>.</summary>
    private enum Family { T5, Pegasus }

    private static readonly Dictionary<string, Family> Families = new(StringComparer.Ordinal)
    {
        // transformers' SLOW_TO_FAST_CONVERTERS: T5Tokenizer → T5Converter (T5, mT5, umT5, LongT5, FLAN-T5), PegasusTokenizer → PegasusConverter.
        ["T5Tokenizer"] = Family.T5, ["MT5Tokenizer"] = Family.T5, ["PegasusTokenizer"] = Family.Pegasus,
        // AutoTokenizer's TOKENIZER_MAPPING_NAMES, for a folder whose tokenizer_config.json names no class.
        ["t5"] = Family.T5, ["mt5"] = Family.T5, ["umt5"] = Family.T5, ["longt5"] = Family.T5, ["pegasus"] = Family.Pegasus,
    };

    /// <summary>
    /// The converted tokenizer.json and the tokenizer_config.json to read it with (the slow tokenizer class's default
    /// special tokens under the folder's own entries).
    /// </summary>
    /// <param name="path">The spiece.model file.</param>
    /// <param name="config">The folder's tokenizer_config.json, if any.</param>
    /// <param name="modelConfig">The folder's config.json, if any (its <c>model_type</c> picks the converter when tokenizer_config.json does not).</param>
    /// <exception cref="RlhfException">A corrupt file, a BPE model, or a tokenizer class without a converter here; the message names the file.</exception>
    public static (JsonObject TokenizerJson, JsonObject Config) Convert(string path, JsonObject? config, JsonObject? modelConfig)
    {
        var proto = SentencePieceModelProto.Read(path);
        if (proto.Type != SentencePieceModelProto.ModelType.Unigram)
            throw new RlhfException($"{path}: trainer_spec.model_type is {proto.Type.ToString().ToUpperInvariant()}; spiece.model is read for Unigram models (T5, FLAN-T5, Pegasus). "
                + "A LLaMA-style BPE SentencePiece model is read when it is named tokenizer.model; or give the folder a tokenizer.json.");
        var tokenizerClass = (string?)config?["tokenizer_class"];
        var modelType = (string?)modelConfig?["model_type"];
        var key = tokenizerClass is not null ? tokenizerClass.EndsWith("Fast", StringComparison.Ordinal) ? tokenizerClass[..^4] : tokenizerClass : modelType;
        if (key is null || !Families.TryGetValue(key, out var family))
            throw new RlhfException(key is null
                ? $"{path}: neither tokenizer_config.json's tokenizer_class nor config.json's model_type says which transformers converter applies to this spiece.model (supported: T5Tokenizer, PegasusTokenizer; model types t5, mt5, umt5, longt5, pegasus)"
                : $"{path}: {(tokenizerClass is not null ? "tokenizer_class" : "model_type")} \"{key}\" has no spiece.model converter here (supported: T5Tokenizer, PegasusTokenizer; model types t5, mt5, umt5, longt5, pegasus); give the folder a tokenizer.json");

        var effective = family == Family.T5 ? T5Defaults(config) : PegasusDefaults(config);
        foreach (var (name, value) in config ?? []) effective[name] = value?.DeepClone();
        // T5Tokenizer.__init__: a given additional_special_tokens list without <extra_id_*> entries gets them appended.
        if (family == Family.T5 && effective["additional_special_tokens"] is JsonArray extra
            && !extra.Select(Content).Any(t => t?.Contains("<extra_id_", StringComparison.Ordinal) == true))
            foreach (var i in Enumerable.Range(0, (int)effective["extra_ids"]!)) extra.Add($"<extra_id_{i}>");
        var eos = Content(effective["eos_token"]) ?? throw new RlhfException($"{path}: tokenizer_config.json eos_token is null; T5 and Pegasus append it to every sequence");
        var (vocab, unkId) = family == Family.T5 ? T5Vocab(proto, effective, path) : PegasusVocab(proto, effective, path);

        var tokenizer = new JsonObject
        {
            ["added_tokens"] = AddedTokens(proto, vocab, effective, family, path),
            ["normalizer"] = Normalizer(proto),
            ["pre_tokenizer"] = PreTokenizer(effective, family),
            ["post_processor"] = PostProcessor(eos),
            ["decoder"] = Metaspace(effective),
            ["model"] = new JsonObject
            {
                ["type"] = "Unigram",
                ["unk_id"] = unkId,
                ["vocab"] = new JsonArray([.. vocab.Select(p => (JsonNode)new JsonArray(p.Piece, p.Score))]),
                ["byte_fallback"] = false,
            },
        };
        return (tokenizer, effective);
    }

    // T5Tokenizer.__init__ (v4.44) defaults: eos "</s>", unk "<unk>", pad "<pad>", extra_ids 100 named <extra_id_0>..<extra_id_99>.
    private static JsonObject T5Defaults(JsonObject? config)
    {
        int extraIds = (int?)config?["extra_ids"] ?? 100;
        return new JsonObject
        {
            ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["pad_token"] = "<pad>", ["extra_ids"] = extraIds,
            ["additional_special_tokens"] = new JsonArray([.. Enumerable.Range(0, extraIds).Select(i => (JsonNode)$"<extra_id_{i}>")]),
        };
    }

    // PegasusTokenizer.__init__ (v4.44) defaults: pad "<pad>", eos "</s>", unk "<unk>", mask "<mask_2>", mask_sent "<mask_1>",
    // offset 103, and additional special tokens <mask_1>, <unk_2> .. <unk_{offset-1}>.
    private static JsonObject PegasusDefaults(JsonObject? config)
    {
        int offset = (int?)config?["offset"] ?? 103;
        return new JsonObject
        {
            ["pad_token"] = "<pad>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["mask_token"] = "<mask_2>",
            ["mask_token_sent"] = "<mask_1>", ["offset"] = offset,
            ["additional_special_tokens"] = new JsonArray([.. new[] { "<mask_1>" }.Concat(Enumerable.Range(2, offset - 2).Select(i => $"<unk_{i}>")).Select(s => (JsonNode)s)]),
        };
    }

    /// <summary>T5Converter.vocab: the pieces, then <c>&lt;extra_id_{n-1}&gt;</c> down to <c>&lt;extra_id_0&gt;</c>; unk_id as the file says.</summary>
    private static (List<(string Piece, double Score)>, int) T5Vocab(SentencePieceModelProto proto, JsonObject config, string path)
    {
        int extraIds = (int)config["extra_ids"]!;
        if (extraIds < 0) throw new RlhfException($"{path}: tokenizer_config.json extra_ids must be ≥ 0, got {extraIds}");
        var vocab = proto.Pieces.Select(p => (p.Text, (double)p.Score)).ToList();
        vocab.AddRange(Enumerable.Range(0, extraIds).Reverse().Select(i => ($"<extra_id_{i}>", 0.0)));
        return (vocab, proto.UnkId);
    }

    /// <summary>
    /// PegasusConverter.vocab: pad, eos, mask_sent, mask, then <c>&lt;unk_2&gt;</c> .. <c>&lt;unk_{offset-1}&gt;</c> at score
    /// -100, then the file's pieces from id 2 on, so piece k becomes id k + offset; unk_id is the file's plus the offset.
    /// </summary>
    private static (List<(string Piece, double Score)>, int) PegasusVocab(SentencePieceModelProto proto, JsonObject config, string path)
    {
        int offset = (int)config["offset"]!;
        var maskSent = Content(config["mask_token_sent"]);
        var mask = Content(config["mask_token"]);
        // With mask_token_sent the slow tokenizer puts the two masks at ids 2 and 3; other layouts are left to a tokenizer.json.
        if (maskSent is null || mask is null || offset < 2)
            throw new RlhfException($"{path}: the Pegasus layout here needs mask_token_sent, mask_token and an offset ≥ 2 in tokenizer_config.json (got {maskSent ?? "null"}, {mask ?? "null"}, {offset}); give the folder a tokenizer.json");
        if (proto.Pieces.Count < 2 || proto.UnkId < 2)
            throw new RlhfException($"{path}: a Pegasus spiece.model starts with <pad> and </s> before its unk piece (unk_id {proto.UnkId} < 2)");
        var vocab = new List<(string, double)>
        {
            (Content(config["pad_token"]) ?? throw new RlhfException($"{path}: tokenizer_config.json pad_token is null; PegasusConverter puts it at id 0"), 0.0),
            (Content(config["eos_token"])!, 0.0), (maskSent, 0.0), (mask, 0.0),
        };
        vocab.AddRange(Enumerable.Range(2, offset - 2).Select(i => ($"<unk_{i}>", -100.0)));
        vocab.AddRange(proto.Pieces.Skip(2).Select(p => (p.Text, (double)p.Score)));
        return (vocab, proto.UnkId + offset);
    }

    /// <summary>
    /// SpmConverter.tokenizer adds the file's CONTROL pieces (special) and USER_DEFINED pieces (not special); then the
    /// fast tokenizer adds the slow tokenizer's special tokens (pad, eos, unk, mask, additional_special_tokens). Each takes
    /// its id in the converted vocabulary, as <c>add_tokens</c> does for a token the model already has.
    /// </summary>
    private static JsonArray AddedTokens(SentencePieceModelProto proto, List<(string Piece, double Score)> vocab, JsonObject config, Family family, string path)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < vocab.Count; i++) ids.TryAdd(vocab[i].Piece, i);
        var added = new List<(int Id, string Content, bool Special)>();
        // Pegasus drops the file's first two pieces (<pad>, </s>) from its vocabulary; their converted namesakes are special below.
        foreach (var piece in proto.Pieces.Skip(family == Family.Pegasus ? 2 : 0))
            if (piece.Type is SentencePieceModelProto.PieceType.Control or SentencePieceModelProto.PieceType.UserDefined)
                added.Add((ids[piece.Text], piece.Text, piece.Type == SentencePieceModelProto.PieceType.Control));
        var specials = new[] { "pad_token", "eos_token", "unk_token", "mask_token", "bos_token", "sep_token", "cls_token" }
            .Select(k => Content(config[k])).OfType<string>()
            .Concat((config["additional_special_tokens"] as JsonArray ?? []).Select(Content).OfType<string>());
        foreach (var token in specials)
        {
            if (!ids.TryGetValue(token, out int id))
                throw new RlhfException($"{path}: special token \"{token}\" of tokenizer_config.json is not a piece of this spiece.model's converted vocabulary");
            int existing = added.FindIndex(a => a.Content == token);
            if (existing >= 0) added[existing] = added[existing] with { Special = true };
            else added.Add((id, token, true));
        }
        return new JsonArray([.. added.OrderBy(a => a.Id).Select(a => (JsonNode)new JsonObject
        {
            ["id"] = a.Id, ["content"] = a.Content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
            ["normalized"] = false, ["special"] = a.Special,
        })]);
    }

    /// <summary>SpmConverter.normalizer: Precompiled (when the file has a charsmap), Strip right, <c>" {2,}"</c> → <c>▁</c>.</summary>
    private static JsonObject Normalizer(SentencePieceModelProto proto)
    {
        var steps = new JsonArray();
        if (proto.PrecompiledCharsmap.Length > 0)
            steps.Add(new JsonObject { ["type"] = "Precompiled", ["precompiled_charsmap"] = System.Convert.ToBase64String(proto.PrecompiledCharsmap) });
        steps.Add(new JsonObject { ["type"] = "Strip", ["strip_left"] = false, ["strip_right"] = true });
        steps.Add(new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["Regex"] = " {2,}" }, ["content"] = "▁" });
        return new JsonObject { ["type"] = "Sequence", ["normalizers"] = steps };
    }

    /// <summary>SpmConverter.pre_tokenizer (Metaspace); PegasusConverter puts WhitespaceSplit before it.</summary>
    private static JsonObject PreTokenizer(JsonObject config, Family family) => family == Family.Pegasus
        ? new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = new JsonArray(new JsonObject { ["type"] = "WhitespaceSplit" }, Metaspace(config)) }
        : Metaspace(config);

    /// <summary>Metaspace with <c>_get_prepend_scheme</c>: "never" without add_prefix_space, "first" for legacy: false, else "always".</summary>
    private static JsonObject Metaspace(JsonObject config)
    {
        bool addPrefixSpace = (bool?)config["add_prefix_space"] ?? true;
        var scheme = !addPrefixSpace ? "never" : (bool?)config["legacy"] == false ? "first" : "always";
        return new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = scheme, ["split"] = true };
    }

    /// <summary>T5Converter / PegasusConverter post_processor: <c>$A &lt;/s&gt;</c> (the eos token).</summary>
    private static JsonObject PostProcessor(string eos) => new()
    {
        ["type"] = "TemplateProcessing",
        ["single"] = new JsonArray(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
            new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = eos, ["type_id"] = 0 } }),
    };

    /// <summary>A special-token entry: a string, or an object with "content" (an AddedToken as tokenizer_config.json stores it).</summary>
    private static string? Content(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonObject o => (string?)o["content"],
        _ => null,
    };
}
