using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Models.T5;

/// <summary>
/// Shape of a T5 encoder-decoder (HF <c>T5Config</c>, model_type <c>t5</c>): T5 v1.0 (relu feed-forward, tied head) and
/// v1.1 / FLAN-T5 (gated-gelu, untied head). Defaults are transformers v4.44 <c>configuration_t5.py</c>'s.
/// </summary>
public sealed record T5Config
{
    public int VocabSize { get; init; } = 32128;            // configuration_t5.py
    public int DModel { get; init; } = 512;                 // configuration_t5.py
    public int DKv { get; init; } = 64;                     // configuration_t5.py
    public int DFf { get; init; } = 2048;                   // configuration_t5.py
    public int NumLayers { get; init; } = 6;                // configuration_t5.py
    /// <summary>Decoder layers; HF defaults them to <see cref="NumLayers"/>.</summary>
    public int? NumDecoderLayersSet { get; init; }
    public int NumHeads { get; init; } = 8;                 // configuration_t5.py
    public int RelativeAttentionNumBuckets { get; init; } = 32;   // configuration_t5.py
    public int RelativeAttentionMaxDistance { get; init; } = 128; // configuration_t5.py
    public double LayerNormEpsilon { get; init; } = 1e-6;   // configuration_t5.py
    /// <summary><c>relu</c> (v1.0) or <c>gated-gelu</c> (v1.1, FLAN-T5); any <c>[gated-]act</c> HF accepts.</summary>
    public string FeedForwardProj { get; init; } = "relu";  // configuration_t5.py
    public bool TieWordEmbeddings { get; init; } = true;    // PretrainedConfig default
    public int PadTokenId { get; init; } = 0;               // configuration_t5.py
    public int EosTokenId { get; init; } = 1;               // configuration_t5.py
    /// <summary>The decoder's first input token; T5 uses the pad id (modeling_t5.py <c>_shift_right</c>).</summary>
    public int DecoderStartTokenId { get; init; } = 0;
    /// <summary>
    /// <c>dropout_rate</c>, every dropout of modeling_t5.py v4.44: on the embeddings (T5Stack.dropout), the attention
    /// probabilities (T5Attention), each sub-layer's output before its residual add (T5LayerSelfAttention,
    /// T5LayerCrossAttention, T5LayerFF), the feed-forward activation (T5DenseActDense, T5DenseGatedActDense) and the
    /// stack's normed output.
    /// </summary>
    public double DropoutRate { get; init; } = 0.1;         // configuration_t5.py

    /// <summary>The config.json this was read from, written back on save so keys we do not model survive.</summary>
    public JsonObject? Source { get; init; }

    public int NumDecoderLayers => NumDecoderLayersSet ?? NumLayers;
    public bool IsGatedAct => FeedForwardProj.StartsWith("gated-", StringComparison.Ordinal);
    /// <summary>The activation: configuration_t5.py maps "gated-gelu" to gelu_new for backwards compatibility.</summary>
    public string DenseActFn => FeedForwardProj == "gated-gelu" ? "gelu_new" : FeedForwardProj.Split('-')[^1];
    public int InnerDim => NumHeads * DKv;
    /// <summary><see cref="DropoutRate"/> at every site.</summary>
    public Dropouts Dropout => new() { Embedding = DropoutRate, Attention = DropoutRate, Residual = DropoutRate, Activation = DropoutRate };

    /// <summary>Whether <paramref name="dir"/>'s config.json describes a T5 model.</summary>
    public static bool IsT5(string dir)
    {
        var path = Path.Combine(dir, "config.json");
        if (!File.Exists(path)) return false;
        try { return (string?)(JsonNode.Parse(File.ReadAllText(path)) as JsonObject)?["model_type"] == "t5"; }
        catch (JsonException) { return false; }
    }

    /// <summary>Reads an HF config.json; errors name the file and the key.</summary>
    public static T5Config Load(string path)
    {
        if (!File.Exists(path)) throw new RlhfException($"{path}: file not found (a Hugging Face model folder needs config.json).");
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new RlhfException($"{path}: not a JSON object."); }
        catch (JsonException e) { throw new RlhfException($"{path}: invalid JSON ({e.Message})."); }
        if ((string?)json["model_type"] != "t5") throw new RlhfException($"{path}: model_type is \"{json["model_type"]}\", expected \"t5\".");
        int Int(string key, int fallback)
        {
            var node = json[key];
            if (node is null) return fallback;
            return node is JsonValue v && v.TryGetValue(out int i) && i >= 0 ? i : throw new RlhfException($"{path}: {key} must be a non-negative integer, got {node.ToJsonString()}.");
        }
        var d = new T5Config();
        var ff = (string?)json["feed_forward_proj"] ?? d.FeedForwardProj;
        var parts = ff.Split('-');
        if (parts.Length > 2 || (parts.Length == 2 && parts[0] != "gated"))
            throw new RlhfException($"{path}: feed_forward_proj \"{ff}\" is not `gated-{{ACT_FN}}` or `{{ACT_FN}}`.");
        var config = new T5Config
        {
            VocabSize = Int("vocab_size", d.VocabSize),
            DModel = Int("d_model", d.DModel),
            DKv = Int("d_kv", d.DKv),
            DFf = Int("d_ff", d.DFf),
            NumLayers = Int("num_layers", d.NumLayers),
            NumDecoderLayersSet = json["num_decoder_layers"] is null ? null : Int("num_decoder_layers", 0),
            NumHeads = Int("num_heads", d.NumHeads),
            RelativeAttentionNumBuckets = Int("relative_attention_num_buckets", d.RelativeAttentionNumBuckets),
            RelativeAttentionMaxDistance = Int("relative_attention_max_distance", d.RelativeAttentionMaxDistance),
            LayerNormEpsilon = json["layer_norm_epsilon"] is JsonValue eps ? eps.GetValue<double>() : d.LayerNormEpsilon,
            FeedForwardProj = ff,
            TieWordEmbeddings = (bool?)json["tie_word_embeddings"] ?? true,
            PadTokenId = Int("pad_token_id", d.PadTokenId),
            EosTokenId = json["eos_token_id"] is JsonArray a ? (int)a[0]! : Int("eos_token_id", d.EosTokenId),
            DecoderStartTokenId = Int("decoder_start_token_id", d.DecoderStartTokenId),
            DropoutRate = json["dropout_rate"] is JsonValue rate && rate.TryGetValue(out double p)
                ? Dropouts.Checked(p, path, "dropout_rate")
                : json["dropout_rate"] is null ? d.DropoutRate : throw new RlhfException($"{path}: dropout_rate must be a number, got {json["dropout_rate"]!.ToJsonString()}."),
            Source = json,
        };
        if (!Activation.IsSupported(config.DenseActFn))
            throw new RlhfException($"{path}: feed_forward_proj \"{ff}\": activation {config.DenseActFn} is not supported ({Activation.Names}).");
        return config;
    }

    /// <summary>The config.json to save: the source's keys, with the shape fields as this record has them.</summary>
    public JsonObject ToJson()
    {
        var json = Source?.DeepClone().AsObject() ?? new JsonObject { ["architectures"] = new JsonArray("T5ForConditionalGeneration"), ["model_type"] = "t5", ["is_encoder_decoder"] = true };
        json["vocab_size"] = VocabSize; json["d_model"] = DModel; json["d_kv"] = DKv; json["d_ff"] = DFf;
        json["num_layers"] = NumLayers; json["num_decoder_layers"] = NumDecoderLayers; json["num_heads"] = NumHeads;
        json["relative_attention_num_buckets"] = RelativeAttentionNumBuckets; json["relative_attention_max_distance"] = RelativeAttentionMaxDistance;
        json["layer_norm_epsilon"] = LayerNormEpsilon; json["feed_forward_proj"] = FeedForwardProj;
        json["tie_word_embeddings"] = TieWordEmbeddings; json["pad_token_id"] = PadTokenId; json["eos_token_id"] = EosTokenId;
        json["decoder_start_token_id"] = DecoderStartTokenId; json["dropout_rate"] = DropoutRate;
        return json;
    }
}
