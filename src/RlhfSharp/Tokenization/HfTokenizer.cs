using System.Text.Json.Nodes;

namespace RlhfSharp.Tokenization;

/// <summary>
/// A Hugging Face tokenizer folder: <c>tokenizer.json</c> with a BPE model (byte-level as GPT-2/Qwen2/Llama 3, or
/// SentencePiece-style with byte fallback as LLaMA 1/2), or a SentencePiece <c>tokenizer.model</c> when there is no
/// <c>tokenizer.json</c>, or a Unigram <c>spiece.model</c> (T5, Pegasus) converted as transformers does (<see cref="SpmConverter"/>). Special ids come from <c>tokenizer_config.json</c> and <c>generation_config.json</c>.
/// </summary>
/// <remarks>
/// Added tokens (special or not) are never matched inside text given to <see cref="Encode"/>; only
/// <see cref="EncodeWithSpecialTokens"/> turns their strings into ids. Decoding drops a dummy-prefix space only
/// right after BOS (see <see cref="ITokenizer"/>), where HF's Strip decoder would drop it at the start of any decode.
/// </remarks>
public sealed class HfTokenizer : ITokenizer
{
    private readonly IBpeModel _model;
    private readonly Dictionary<int, AddedToken> _added;
    private readonly AddedVocabulary _addedVocabulary;
    private readonly List<int> _eosIds;

    public int VocabSize { get; }
    public int? BosId { get; }
    public int? EosId => _eosIds.Count > 0 ? _eosIds[0] : null;
    /// <summary>The tokenizer's EOS first (tokenizer_config <c>eos_token</c>), then any other ids from generation_config <c>eos_token_id</c>.</summary>
    public IReadOnlyList<int> EosIds => _eosIds;
    public int? PadId { get; }
    /// <summary>transformers' <c>all_special_ids</c>: BOS, EOS, PAD and tokenizer_config's unk/sep/cls/mask/additional_special_tokens.</summary>
    public IReadOnlyList<int> SpecialIds => [.. new[] { BosId }.Concat(_eosIds.Select(i => (int?)i)).Append(PadId).OfType<int>().Concat(OtherSpecialIds).Distinct()];
    private IReadOnlyList<int> OtherSpecialIds { get; init; } = [];
    /// <summary>Whether the model expects BOS in front of every sequence (tokenizer_config <c>add_bos_token</c>, or a BOS in the post-processor).</summary>
    public bool AddBosToken { get; }
    /// <summary>The added tokens (specials such as <c>&lt;|im_start|&gt;</c>) by their string.</summary>
    public IReadOnlyDictionary<string, int> AddedTokens { get; }
    /// <summary>Whether HF's encode appends EOS (a post-processor template ending in the EOS token: T5, Pegasus).</summary>
    public bool AddEosToken { get; private init; }
    /// <summary>The decoder drops the dummy space of the first token of every decode (HF's Metaspace decoder), not only after BOS.</summary>
    private bool StripsAtDecodeStart { get; init; }
    /// <summary>tokenizer_config.json <c>clean_up_tokenization_spaces</c> (transformers v4.44 defaults it to true).</summary>
    public bool CleanUpTokenizationSpaces { get; }
    /// <summary>Merge-queue operations done by all encodes so far (see <see cref="BpeMerge"/>); 0 for tokenizer.model files.</summary>
    public long MergeWork => (_model as TokenizerJsonModel)?.MergeWork ?? 0;

    private HfTokenizer(IBpeModel model, int vocabSize, IEnumerable<AddedToken> added, Func<string, string>? normalizer,
        int? bosId, IEnumerable<int> eosIds, int? padId, bool addBosToken, bool cleanUp)
    {
        _model = model;
        VocabSize = vocabSize;
        var addedList = added.ToList();
        _added = addedList.GroupBy(a => a.Id).ToDictionary(g => g.Key, g => g.First());
        AddedTokens = addedList.GroupBy(a => a.Content).ToDictionary(g => g.Key, g => g.First().Id);
        _addedVocabulary = new AddedVocabulary(addedList, normalizer);
        BosId = bosId;
        _eosIds = eosIds.Distinct().ToList();
        PadId = padId ?? EosId;
        AddBosToken = addBosToken;
        CleanUpTokenizationSpaces = cleanUp;
    }

    /// <summary>Loads the tokenizer of the HF model folder <paramref name="dir"/> (tokenizer.json, else tokenizer.model, else spiece.model).</summary>
    public static HfTokenizer Load(string dir)
    {
        var jsonPath = Path.Combine(dir, "tokenizer.json");
        var modelPath = Path.Combine(dir, "tokenizer.model");
        var config = ReadJson(Path.Combine(dir, "tokenizer_config.json"));
        var generation = ReadJson(Path.Combine(dir, "generation_config.json"));
        if (File.Exists(jsonPath)) return FromTokenizerJson(jsonPath, config, generation);
        if (File.Exists(modelPath)) return FromSentencePieceModel(modelPath, config, generation);
        // T5, FLAN-T5 and Pegasus folders may ship only the SentencePiece file the slow tokenizer reads; transformers
        // then converts it to a fast tokenizer, and so does SpmConverter, into the tokenizer.json it would produce.
        var spiecePath = Path.Combine(dir, "spiece.model");
        if (File.Exists(spiecePath))
        {
            var (converted, effectiveConfig) = SpmConverter.Convert(spiecePath, config, ReadJson(Path.Combine(dir, "config.json")));
            return FromTokenizerJson(converted, spiecePath, effectiveConfig, generation);
        }
        throw new RlhfException($"no tokenizer in {dir}: looked for tokenizer.json, tokenizer.model and spiece.model");
    }

    /// <summary>A token id as tokenizers stores it (a u32): a string, a fraction or a negative number is an error naming the key.</summary>
    private static int TokenId(JsonNode? node, string path, string key) =>
        node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number && v.TryGetValue(out int id) && id >= 0 ? id
            : throw new RlhfException($"{path}: {key} must be a token id (an integer ≥ 0), got {node?.ToJsonString() ?? "null"}");

    private static HfTokenizer FromTokenizerJson(string path, JsonObject? config, JsonObject? generation) =>
        FromTokenizerJson(ReadJson(path)!, path, config, generation);

    /// <summary>A tokenizer.json object; <paramref name="path"/> names its file in error messages.</summary>
    private static HfTokenizer FromTokenizerJson(JsonObject root, string path, JsonObject? config, JsonObject? generation)
    {
        var model = root["model"] as JsonObject ?? throw new RlhfException($"{path}: no \"model\" object");
        var type = (string?)model["type"];
        if (type is not ("BPE" or "Unigram")) throw new RlhfException($"{path}: model.type is \"{type}\"; only BPE and Unigram tokenizers are supported");

        var added = new List<AddedToken>();
        foreach (var (t, i) in (root["added_tokens"] as JsonArray ?? []).Select((t, i) => (t, i)))
        {
            bool special = (bool?)t!["special"] ?? true;
            added.Add(new AddedToken(TokenId(t["id"], path, $"added_tokens[{i}].id"),
                (string?)t["content"] ?? throw new RlhfException($"{path}: an added_tokens entry has no content"), special,
                SingleWord: (bool?)t["single_word"] ?? false, LStrip: (bool?)t["lstrip"] ?? false,
                RStrip: (bool?)t["rstrip"] ?? false, Normalized: (bool?)t["normalized"] ?? !special));
        }
        var normalizer = TextNormalizer.Create(root["normalizer"], path);
        var preTokenizer = PreTokenizer.Create(root["pre_tokenizer"], path);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        ISubwordModel subwordModel;
        if (type == "Unigram")
        {
            var pieces = ReadUnigramVocab(model["vocab"], path);
            for (int id = 0; id < pieces.Count; id++) vocab.TryAdd(pieces[id].Piece, id);
            int? unkId = model["unk_id"] is JsonNode unkNode ? TokenId(unkNode, path, "model.unk_id") : null;
            subwordModel = new UnigramModel(pieces, unkId, (bool?)model["byte_fallback"] ?? false, path);
        }
        else
        {
            foreach (var (piece, value) in model["vocab"] as JsonObject ?? throw new RlhfException($"{path}: model.vocab is missing"))
                vocab[piece] = TokenId(value, path, $"model.vocab[\"{piece}\"]");
            // A merge that builds a special's string would let typed text become that special: drop such merges.
            var specialContents = added.Where(a => a.Special).Select(a => a.Content).ToHashSet();
            var merges = ReadMerges(model["merges"], path).Where(m => !specialContents.Contains(m.Left + m.Right));
            var unkToken = (string?)model["unk_token"];
            int? unkId = unkToken is not null && vocab.TryGetValue(unkToken, out var u) ? u : null;
            if ((string?)model["continuing_subword_prefix"] is { Length: > 0 } || (string?)model["end_of_word_suffix"] is { Length: > 0 })
                throw new RlhfException($"{path}: BPE continuing_subword_prefix/end_of_word_suffix are not supported");
            subwordModel = new BpeModel(vocab, merges, (bool?)model["byte_fallback"] ?? false, (bool?)model["ignore_merges"] ?? false,
                (bool?)model["fuse_unk"] ?? false, unkId, path);
        }
        var decoderTypes = Flatten(root["decoder"], "decoders").Select(d => (string?)d["type"]).ToList();
        bool byteLevelDecode = preTokenizer.IsByteLevel || decoderTypes.Contains("ByteLevel");
        var normalizers = Flatten(root["normalizer"], "normalizers").ToList();
        var metaspace = Flatten(root["pre_tokenizer"], "pretokenizers").FirstOrDefault(p => (string?)p["type"] == "Metaspace");
        bool prependsSpace = normalizers.Any(n => (string?)n["type"] == "Prepend")
            || (metaspace is not null && ((string?)metaspace["prepend_scheme"] ?? ((bool?)metaspace["add_prefix_space"] == false ? "never" : "always")) != "never");
        // decoders/metaspace.rs drops the first piece's ▁ at the start of every decode, not only after BOS. Followed for
        // Unigram models (T5, Pegasus: no BOS, and HF's decode of generated ids drops that space); BPE models keep the
        // BOS rule of ITokenizer, so a sampled continuation keeps its leading space.
        bool metaspaceDecoder = type == "Unigram" && Flatten(root["decoder"], "decoders").Any(d => (string?)d["type"] == "Metaspace"
            && ((string?)d["prepend_scheme"] ?? ((bool?)d["add_prefix_space"] == false ? "never" : "always")) != "never");
        IBpeModel bpe = new TokenizerJsonModel(preTokenizer, subwordModel, byteLevelDecode, prependsSpace, metaspaceDecoder);

        int IdOf(string token) =>
            added.FirstOrDefault(a => a.Content == token) is { } a ? a.Id
            : vocab.TryGetValue(token, out int id) ? id
            : throw new RlhfException($"{path}: special token \"{token}\" from tokenizer_config.json is neither an added token nor in the vocab");

        var (bos, eos, pad) = ReadSpecialIds(config, generation, IdOf);
        bool addBos = (bool?)config?["add_bos_token"]
            ?? (bos is int b && root["post_processor"]?.ToJsonString().Contains($"[{b}]") == true);
        int vocabSize = Math.Max(vocab.Count > 0 ? vocab.Values.Max() : 0, added.Count > 0 ? added.Max(a => a.Id) : 0) + 1;
        // T5 and Pegasus append EOS through the post-processor's template ($A </s>), which HF's encode applies.
        bool addEos = eos.Count > 0 && root["post_processor"]?["single"] is JsonArray single && single.Count > 0
            && (string?)single[^1]?["SpecialToken"]?["id"] is string last && IdOf(last) == eos[0];
        return new HfTokenizer(bpe, vocabSize, added, normalizer, bos, eos, pad, addBos, CleanUp(config))
            { AddEosToken = addEos, StripsAtDecodeStart = metaspaceDecoder, OtherSpecialIds = OtherSpecials(config, IdOf) };
    }

    /// <summary>A Unigram <c>model.vocab</c>: a list of [piece, score] pairs in id order.</summary>
    private static List<(string Piece, double Score)> ReadUnigramVocab(JsonNode? node, string path)
    {
        var list = new List<(string, double)>();
        foreach (var (entry, i) in (node as JsonArray ?? throw new RlhfException($"{path}: model.vocab of the Unigram model is missing or not a list")).Select((e, i) => (e, i)))
        {
            if (entry is not JsonArray { Count: 2 } pair || pair[0] is not JsonValue piece || !piece.TryGetValue(out string? text)
                || pair[1] is not JsonValue score || !score.TryGetValue(out double value))
                throw new RlhfException($"{path}: model.vocab[{i}] must be [piece, score], got {entry?.ToJsonString() ?? "null"}");
            list.Add((text, value));
        }
        return list;
    }

    private static HfTokenizer FromSentencePieceModel(string path, JsonObject? config, JsonObject? generation)
    {
        var sp = new SentencePieceModelFile(path);
        var added = new List<AddedToken>();
        foreach (int id in new[] { sp.UnkId, sp.BosId, sp.EosId }.Where(id => id >= 0).Distinct())
            added.Add(new AddedToken(id, sp.Vocabulary.First(kv => kv.Value == id).Key, Special: true));
        int IdOf(string token) => sp.Vocabulary.TryGetValue(token, out int id) ? id
            : throw new RlhfException($"{path}: special token \"{token}\" from tokenizer_config.json is not in the SentencePiece vocab");
        var (bos, eos, pad) = ReadSpecialIds(config, generation, IdOf);
        bos ??= sp.BosId;
        if (eos.Count == 0) eos.Add(sp.EosId);
        return new HfTokenizer(sp, sp.Vocabulary.Values.Max() + 1, added, null, bos, eos, pad, (bool?)config?["add_bos_token"] ?? true, CleanUp(config))
            { OtherSpecialIds = [.. OtherSpecials(config, IdOf).Append(sp.UnkId).Where(id => id >= 0)] };
    }

    /// <summary>
    /// tokenizer_config.json names the tokens (a string, or an object with "content"); generation_config.json gives
    /// ids, and its eos_token_id may be a list. The tokenizer's own tokens come first; generation_config adds the
    /// extra stop ids. BOS comes from generation_config only when tokenizer_config does not mention bos_token at all,
    /// because Qwen2 sets bos_token null there while generation_config still names a bos id it never prepends.
    /// </summary>
    private static (int? Bos, List<int> Eos, int? Pad) ReadSpecialIds(JsonObject? config, JsonObject? generation, Func<string, int> idOf)
    {
        static string? TokenString(JsonNode? node) => node switch
        {
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonObject o => (string?)o["content"],
            _ => null,
        };
        static IEnumerable<int> Ids(JsonNode? node) => node switch
        {
            JsonArray a => a.Select(x => (int)x!),
            JsonValue v when v.TryGetValue(out int i) => [i],
            _ => [],
        };

        int? bos = TokenString(config?["bos_token"]) is string b ? idOf(b)
            : config?.ContainsKey("bos_token") == true ? null
            : Ids(generation?["bos_token_id"]).Cast<int?>().FirstOrDefault();
        var eos = new List<int>();
        if (TokenString(config?["eos_token"]) is string e) eos.Add(idOf(e));
        eos.AddRange(Ids(generation?["eos_token_id"]));
        int? pad = TokenString(config?["pad_token"]) is string p ? idOf(p) : Ids(generation?["pad_token_id"]).Cast<int?>().FirstOrDefault();
        return (bos, eos, pad);
    }

    /// <summary>
    /// The special-tokens map's other entries (transformers v4.44 SpecialTokensMixin.SPECIAL_TOKENS_ATTRIBUTES: unk_token,
    /// sep_token, cls_token, mask_token, additional_special_tokens), each a string or an object with "content".
    /// </summary>
    private static List<int> OtherSpecials(JsonObject? config, Func<string, int> idOf)
    {
        static string? TokenString(JsonNode? node) => node switch
        {
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonObject o => (string?)o["content"],
            _ => null,
        };
        var nodes = new[] { "unk_token", "sep_token", "cls_token", "mask_token" }.Select(k => config?[k])
            .Concat((config?["additional_special_tokens"] as JsonArray ?? []).Select(x => x));
        return [.. nodes.Select(TokenString).OfType<string>().Select(idOf)];
    }

    // transformers v4.44 PreTrainedTokenizerBase: clean_up_tokenization_spaces defaults to True when the config is silent.
    private static bool CleanUp(JsonObject? config) => (bool?)config?["clean_up_tokenization_spaces"] ?? true;

    private static IEnumerable<(string Left, string Right)> ReadMerges(JsonNode? merges, string path)
    {
        foreach (var merge in merges as JsonArray ?? [])
        {
            if (merge is JsonArray pair) { yield return ((string)pair[0]!, (string)pair[1]!); continue; }
            var text = (string)merge!;
            int space = text.IndexOf(' ', 1); // a merge "a b" splits at its single inner space
            if (space < 0) throw new RlhfException($"{path}: merge \"{text}\" is not \"left right\"");
            yield return (text[..space], text[(space + 1)..]);
        }
    }

    /// <summary>A normalizer/pre-tokenizer is either one object or a "Sequence" holding a list of them.</summary>
    private static IEnumerable<JsonObject> Flatten(JsonNode? node, string listKey)
    {
        if (node is not JsonObject obj) yield break;
        if ((string?)obj["type"] == "Sequence")
        {
            foreach (var child in obj[listKey] as JsonArray ?? [])
                foreach (var inner in Flatten(child, listKey)) yield return inner;
        }
        else yield return obj;
    }

    private static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (System.Text.Json.JsonException e) { throw new RlhfException($"{path} is not valid JSON: {e.Message}", e); }
    }

    /// <summary>Encodes text as HF does with <c>split_special_tokens=True</c>: non-special added tokens (Pythia's runs
    /// of spaces) are found in the text, special-token strings stay plain text.</summary>
    public int[] Encode(string text, bool addBos = false) => EncodePieces(_addedVocabulary.Split(text, matchSpecial: false), addBos);

    /// <summary>Encodes text as HF's <c>tokenizer.encode</c> does: every added token found in the text becomes its id,
    /// except special ones inside <paramref name="plainSpans"/>.</summary>
    public int[] EncodeWithSpecialTokens(string text, bool addBos = false, IReadOnlyList<(int Start, int Length)>? plainSpans = null) =>
        EncodePieces(_addedVocabulary.Split(text, matchSpecial: true, plainSpans), addBos);

    private int[] EncodePieces(List<AddedVocabulary.Piece> pieces, bool addBos)
    {
        var ids = new List<int>();
        if (addBos && BosId is int bos) ids.Add(bos);
        foreach (var piece in pieces)
        {
            if (piece.Token is not null) ids.Add(piece.Token.Id);
            else ids.AddRange(_model.Encode(piece.Text, piece.AtTextStart));
        }
        return ids.ToArray();
    }

    /// <summary>The token string of an id: an added token's content, else the vocabulary piece (byte-level form for GPT-2).</summary>
    public string IdToToken(int id) =>
        _added.TryGetValue(id, out var added) ? added.Content
        : _model is TokenizerJsonModel json && id >= 0 && id < json.Bpe.Pieces.Length ? json.Bpe.Pieces[id] ?? ""
        : _model is SentencePieceModelFile sp ? sp.Piece(id) : "";

    public byte[] TokenBytes(int id) =>
        _added.TryGetValue(id, out var added) ? System.Text.Encoding.UTF8.GetBytes(added.Content) : _model.TokenBytes(id);

    public string Decode(IReadOnlyList<int> ids, bool skipSpecial = true)
    {
        var text = new System.Text.StringBuilder();
        var run = new List<int>();
        bool runFollowsBos = StripsAtDecodeStart;
        bool anyKept = false;
        foreach (int id in ids)
        {
            if (id < 0 || id >= VocabSize) throw new RlhfException($"token id {id} is outside the vocabulary (0..{VocabSize - 1})");
            bool isAdded = _added.TryGetValue(id, out var added);
            bool isSpecial = (isAdded && added!.Special) || id == BosId || _eosIds.Contains(id) || id == PadId;
            if (!isAdded && !isSpecial) { run.Add(id); continue; }
            text.Append(_model.Decode(run, runFollowsBos));
            anyKept |= run.Count > 0;
            run.Clear();
            bool kept = !(skipSpecial && isSpecial);
            if (kept) text.Append(isAdded ? added!.Content : _model.Decode([id], false));
            // The Metaspace decoder's "first token" is the first one kept (skipped specials are removed before it runs).
            anyKept |= kept;
            runFollowsBos = id == BosId || (StripsAtDecodeStart && !anyKept);
        }
        text.Append(_model.Decode(run, runFollowsBos));
        return text.ToString();
    }

    /// <summary>Decodes as transformers' <c>decode(ids, skip_special_tokens, clean_up_tokenization_spaces)</c>.</summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecial, bool cleanUpTokenizationSpaces)
    {
        var text = Decode(ids, skipSpecial);
        return cleanUpTokenizationSpaces ? CleanUpTokenization(text) : text;
    }

    /// <summary>transformers' <c>PreTrainedTokenizerBase.clean_up_tokenization</c>: drops the space before punctuation and English contractions.</summary>
    public static string CleanUpTokenization(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}
