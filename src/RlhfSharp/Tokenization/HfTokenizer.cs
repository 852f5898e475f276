using System.Text.Json.Nodes;

namespace RlhfSharp.Tokenization;

/// <summary>
/// A Hugging Face tokenizer folder: <c>tokenizer.json</c> with a BPE model (byte-level as GPT-2/Qwen2/Llama 3, or
/// SentencePiece-style with byte fallback as LLaMA 1/2), or a SentencePiece <c>tokenizer.model</c> when there is no
/// <c>tokenizer.json</c>. Special ids come from <c>tokenizer_config.json</c> and <c>generation_config.json</c>.
/// </summary>
/// <remarks>
/// Added tokens (special or not) are never matched inside text given to <see cref="Encode"/>; only
/// <see cref="EncodeWithSpecialTokens"/> turns their strings into ids. Decoding drops a dummy-prefix space only
/// right after BOS (see <see cref="ITokenizer"/>), where HF's Strip decoder would drop it at the start of any decode.
/// </remarks>
public sealed class HfTokenizer : ITokenizer
{
    private readonly IBpeModel _model;
    private readonly Dictionary<int, (string Content, bool Special)> _added;
    private readonly SpecialTokenSplitter _splitter;
    private readonly List<int> _eosIds;

    public int VocabSize { get; }
    public int? BosId { get; }
    public int? EosId => _eosIds.Count > 0 ? _eosIds[0] : null;
    /// <summary>The tokenizer's EOS first (tokenizer_config <c>eos_token</c>), then any other ids from generation_config <c>eos_token_id</c>.</summary>
    public IReadOnlyList<int> EosIds => _eosIds;
    public int? PadId { get; }
    /// <summary>Whether the model expects BOS in front of every sequence (tokenizer_config <c>add_bos_token</c>, or a BOS in the post-processor).</summary>
    public bool AddBosToken { get; }
    /// <summary>The added tokens (specials such as <c>&lt;|im_start|&gt;</c>) by their string.</summary>
    public IReadOnlyDictionary<string, int> AddedTokens { get; }

    private HfTokenizer(IBpeModel model, int vocabSize, IEnumerable<(int Id, string Content, bool Special)> added,
        int? bosId, IEnumerable<int> eosIds, int? padId, bool addBosToken)
    {
        _model = model;
        VocabSize = vocabSize;
        _added = added.ToDictionary(a => a.Id, a => (a.Content, a.Special));
        AddedTokens = _added.ToDictionary(a => a.Value.Content, a => a.Key);
        _splitter = new SpecialTokenSplitter(AddedTokens);
        BosId = bosId;
        _eosIds = eosIds.Distinct().ToList();
        PadId = padId ?? EosId;
        AddBosToken = addBosToken;
    }

    /// <summary>Loads the tokenizer of the HF model folder <paramref name="dir"/> (tokenizer.json, else tokenizer.model).</summary>
    public static HfTokenizer Load(string dir)
    {
        var jsonPath = Path.Combine(dir, "tokenizer.json");
        var modelPath = Path.Combine(dir, "tokenizer.model");
        var config = ReadJson(Path.Combine(dir, "tokenizer_config.json"));
        var generation = ReadJson(Path.Combine(dir, "generation_config.json"));
        if (File.Exists(jsonPath)) return FromTokenizerJson(jsonPath, config, generation);
        if (File.Exists(modelPath)) return FromSentencePieceModel(modelPath, config, generation);
        throw new RlhfException($"no tokenizer in {dir}: looked for tokenizer.json and tokenizer.model");
    }

    /// <summary>A token id as tokenizers stores it (a u32): a string, a fraction or a negative number is an error naming the key.</summary>
    private static int TokenId(JsonNode? node, string path, string key) =>
        node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number && v.TryGetValue(out int id) && id >= 0 ? id
            : throw new RlhfException($"{path}: {key} must be a token id (an integer ≥ 0), got {node?.ToJsonString() ?? "null"}");

    private static HfTokenizer FromTokenizerJson(string path, JsonObject? config, JsonObject? generation)
    {
        var root = ReadJson(path)!;
        var model = root["model"] as JsonObject ?? throw new RlhfException($"{path}: no \"model\" object");
        var type = (string?)model["type"];
        if (type != "BPE") throw new RlhfException($"{path}: model.type is \"{type}\"; only BPE tokenizers are supported");

        var vocab = (model["vocab"] as JsonObject ?? throw new RlhfException($"{path}: model.vocab is missing"))
            .ToDictionary(kv => kv.Key, kv => TokenId(kv.Value, path, $"model.vocab[\"{kv.Key}\"]"));
        var added = (root["added_tokens"] as JsonArray ?? [])
            .Select((t, i) => (TokenId(t?["id"], path, $"added_tokens[{i}].id"), (string)t!["content"]!, (bool?)t["special"] ?? true)).ToList();
        var addedContents = added.Select(a => a.Item2).ToHashSet();
        // A merge that builds a special's string would let typed text become that special: drop such merges.
        var merges = ReadMerges(model["merges"], path).Where(m => !addedContents.Contains(m.Left + m.Right));

        IBpeModel bpe;
        var preTokenizers = Flatten(root["pre_tokenizer"], "pretokenizers").ToList();
        var normalizers = Flatten(root["normalizer"], "normalizers").ToList();
        if (preTokenizers.Any(p => (string?)p["type"] == "ByteLevel"))
        {
            var split = preTokenizers.FirstOrDefault(p => (string?)p["type"] == "Split");
            var byteLevel = preTokenizers.First(p => (string?)p["type"] == "ByteLevel");
            string pattern = split is not null
                ? (string?)split["pattern"]?["Regex"] ?? System.Text.RegularExpressions.Regex.Escape((string?)split["pattern"]?["String"] ?? " ")
                : ByteLevelBpe.Gpt2Pattern;
            if (split is null && (bool?)byteLevel["use_regex"] == false) pattern = @"[\s\S]+";
            if ((bool?)byteLevel["add_prefix_space"] == true)
                throw new RlhfException($"{path}: ByteLevel add_prefix_space=true is not supported");
            bpe = new ByteLevelBpe(vocab, merges, pattern);
        }
        else
        {
            var metaspace = preTokenizers.FirstOrDefault(p => (string?)p["type"] == "Metaspace");
            var prepend = SentencePieceBpe.PrependScheme.Never;
            bool splitOnSpace = false;
            if (normalizers.Any(n => (string?)n["type"] == "Prepend" && (string?)n["prepend"] == "▁")) prepend = SentencePieceBpe.PrependScheme.Always;
            if (metaspace is not null)
            {
                prepend = ((string?)metaspace["prepend_scheme"] ?? ((bool?)metaspace["add_prefix_space"] == false ? "never" : "always")) switch
                {
                    "first" => SentencePieceBpe.PrependScheme.First,
                    "never" => SentencePieceBpe.PrependScheme.Never,
                    _ => SentencePieceBpe.PrependScheme.Always,
                };
                splitOnSpace = (bool?)metaspace["split"] ?? true;
            }
            bool replacesSpaces = metaspace is not null || normalizers.Any(n => (string?)n["type"] == "Replace" && (string?)n["content"] == "▁");
            if (!replacesSpaces)
                throw new RlhfException($"{path}: BPE without a ByteLevel pre-tokenizer must map spaces to ▁ (SentencePiece style); this one does not");
            var unkToken = (string?)model["unk_token"];
            int? unkId = unkToken is not null && vocab.TryGetValue(unkToken, out var u) ? u : null;
            bpe = new SentencePieceBpe(vocab, merges, prepend, splitOnSpace, (bool?)model["byte_fallback"] ?? false, unkId);
        }

        int IdOf(string token) =>
            added.FirstOrDefault(a => a.Item2 == token) is { Item2: not null } a ? a.Item1
            : vocab.TryGetValue(token, out int id) ? id
            : throw new RlhfException($"{path}: special token \"{token}\" from tokenizer_config.json is neither an added token nor in the vocab");

        var (bos, eos, pad) = ReadSpecialIds(config, generation, IdOf);
        bool addBos = (bool?)config?["add_bos_token"]
            ?? (bos is int b && root["post_processor"]?.ToJsonString().Contains($"[{b}]") == true);
        int vocabSize = Math.Max(vocab.Values.Max(), added.Count > 0 ? added.Max(a => a.Item1) : 0) + 1;
        return new HfTokenizer(bpe, vocabSize, added, bos, eos, pad, addBos);
    }

    private static HfTokenizer FromSentencePieceModel(string path, JsonObject? config, JsonObject? generation)
    {
        var sp = new SentencePieceModelFile(path);
        var added = new List<(int, string, bool)>();
        foreach (int id in new[] { sp.UnkId, sp.BosId, sp.EosId }.Where(id => id >= 0).Distinct())
            added.Add((id, sp.Vocabulary.First(kv => kv.Value == id).Key, true));
        int IdOf(string token) => sp.Vocabulary.TryGetValue(token, out int id) ? id
            : throw new RlhfException($"{path}: special token \"{token}\" from tokenizer_config.json is not in the SentencePiece vocab");
        var (bos, eos, pad) = ReadSpecialIds(config, generation, IdOf);
        bos ??= sp.BosId;
        if (eos.Count == 0) eos.Add(sp.EosId);
        return new HfTokenizer(sp, sp.Vocabulary.Values.Max() + 1, added, bos, eos, pad, (bool?)config?["add_bos_token"] ?? true);
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

    public int[] Encode(string text, bool addBos = false)
    {
        var ids = new List<int>();
        if (addBos && BosId is int bos) ids.Add(bos);
        ids.AddRange(_model.Encode(text, atTextStart: true));
        return ids.ToArray();
    }

    public int[] EncodeWithSpecialTokens(string text, bool addBos = false, IReadOnlyList<(int Start, int Length)>? plainSpans = null)
    {
        var ids = new List<int>();
        if (addBos && BosId is int bos) ids.Add(bos);
        bool atStart = true;
        ids.AddRange(_splitter.Encode(text, segment =>
        {
            var segmentIds = _model.Encode(segment, atStart);
            atStart = false;
            return segmentIds;
        }, plainSpans));
        return ids.ToArray();
    }

    public byte[] TokenBytes(int id) =>
        _added.TryGetValue(id, out var added) ? System.Text.Encoding.UTF8.GetBytes(added.Content) : _model.TokenBytes(id);

    public string Decode(IReadOnlyList<int> ids, bool skipSpecial = true)
    {
        var text = new System.Text.StringBuilder();
        var run = new List<int>();
        bool runFollowsBos = false;
        foreach (int id in ids)
        {
            bool isAdded = _added.TryGetValue(id, out var added);
            bool isSpecial = (isAdded && added.Special) || id == BosId || _eosIds.Contains(id) || id == PadId;
            if (!isAdded && !isSpecial) { run.Add(id); continue; }
            text.Append(_model.Decode(run, runFollowsBos));
            run.Clear();
            if (!(skipSpecial && isSpecial)) text.Append(isAdded ? added.Content : _model.Decode([id], false));
            runFollowsBos = id == BosId;
        }
        text.Append(_model.Decode(run, runFollowsBos));
        return text.ToString();
    }
}
