using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Tokenization;

public sealed partial class Llama2cTokenizer
{
    private static readonly string[] SpecialNames = ["<unk>", "<s>", "</s>"];

    /// <summary>
    /// Writes <c>tokenizer.json</c>, <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c> into
    /// <paramref name="dir"/> in the form HF transformers' LlamaTokenizerFast loads: a BPE with byte fallback whose
    /// merges are derived from the scores the way HF's LlamaConverter does, so it encodes as llama2.c does.
    /// </summary>
    /// <param name="dir">Output folder (created if missing).</param>
    /// <param name="modelMaxLength">The model's context length (llama2.c keeps it in the checkpoint, not tok.bin); omitted when null.</param>
    public void SaveHuggingFace(string dir, int? modelMaxLength = null)
    {
        Directory.CreateDirectory(dir);
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), TokenizerJson().ToJsonString(options));

        var config = new JsonObject
        {
            ["tokenizer_class"] = "LlamaTokenizerFast",
            ["add_bos_token"] = true,
            ["add_eos_token"] = false,
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
            ["unk_token"] = "<unk>",
            ["pad_token"] = null,
            // legacy=true keeps the "▁ after every special" behaviour the Prepend normalizer gives, as run.c's encode does per call.
            ["legacy"] = true,
            ["clean_up_tokenization_spaces"] = false,
            ["added_tokens_decoder"] = new JsonObject(SpecialNames.Select((name, id) =>
                KeyValuePair.Create(id.ToString(), (JsonNode?)AddedToken(id, name)))),
        };
        if (modelMaxLength is int max) config["model_max_length"] = max;
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString(options));

        var map = new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>" };
        File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), map.ToJsonString(options));
    }

    /// <summary>The vocab piece for HF: spaces as <c>▁</c>, and the special tokens by their plain names.</summary>
    private string HfPiece(int id) => id < SpecialNames.Length ? SpecialNames[id] : _pieces[id].Replace(' ', '▁');

    private JsonObject TokenizerJson()
    {
        var vocab = new JsonObject();
        for (int id = 0; id < _pieces.Length; id++) vocab[HfPiece(id)] = id;
        var merges = new JsonArray(DeriveMerges().Select(m => (JsonNode?)$"{m.Left} {m.Right}").ToArray());

        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(SpecialNames.Select((name, id) => (JsonNode?)AddedToken(id, name)).ToArray()),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(SpecialPart("<s>", 0), SequencePart("A", 0)),
                ["pair"] = new JsonArray(SpecialPart("<s>", 0), SequencePart("A", 0), SpecialPart("<s>", 1), SequencePart("B", 1)),
                ["special_tokens"] = new JsonObject
                {
                    ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("<s>") },
                },
            },
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = "<unk>",
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = true,
                ["byte_fallback"] = true,
                ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = merges,
            },
        };
    }

    /// <summary>
    /// The merges HF's SentencePieceExtractor derives: for every piece, each split into two vocab pieces, the splits
    /// of one piece ordered by (left id, right id), all ordered by the piece's score descending (a stable sort, so
    /// equal scores keep vocab order). Ranking a pair by its result's score is what makes rank-order BPE reproduce
    /// run.c's "merge the highest-scoring pair" loop.
    /// </summary>
    internal List<(string Left, string Right)> DeriveMerges()
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < _pieces.Length; id++) ids.TryAdd(HfPiece(id), id);
        var merges = new List<(string Left, string Right, float Score)>();
        for (int id = 0; id < _pieces.Length; id++)
        {
            // Specials and byte pieces are matched whole, never built by merging.
            if (id < ByteOffset + 256) continue;
            var piece = HfPiece(id);
            var local = new List<(string Left, string Right, float Score)>();
            for (int cut = 1; cut < piece.Length; cut++)
            {
                if (char.IsLowSurrogate(piece[cut])) continue; // never cut a character in half
                string left = piece[..cut], right = piece[cut..];
                if (ids.ContainsKey(left) && ids.ContainsKey(right)) local.Add((left, right, _scores[id]));
            }
            merges.AddRange(local.OrderBy(m => ids[m.Left]).ThenBy(m => ids[m.Right]));
        }
        return merges.OrderByDescending(m => m.Score).Select(m => (m.Left, m.Right)).ToList();
    }

    private static JsonObject AddedToken(int id, string content) => new()
    {
        ["id"] = id,
        ["content"] = content,
        ["single_word"] = false,
        ["lstrip"] = false,
        ["rstrip"] = false,
        ["normalized"] = false,
        ["special"] = true,
    };

    private static JsonObject SpecialPart(string id, int typeId) =>
        new() { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = typeId } };

    private static JsonObject SequencePart(string id, int typeId) =>
        new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = typeId } };
}
