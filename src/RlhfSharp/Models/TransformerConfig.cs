using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Models;

/// <summary>The decoder-only architectures one <see cref="Transformer"/> covers.</summary>
public enum ModelFamily
{
    /// <summary>GPT-2: learned positions, LayerNorm with bias, gelu_new MLP, Conv1D weights stored [in, out].</summary>
    Gpt2,
    /// <summary>LLaMA (and Mistral, Qwen2): RMSNorm, rotate_half RoPE, SwiGLU, grouped-query attention.</summary>
    Llama,
    /// <summary>GPT-NeoX / Pythia: per-head fused QKV, partial rotate_half RoPE, parallel or sequential residual (Neox/).</summary>
    Neox,
    /// <summary>OPT: learned positions offset by 2, optional project_in/out, pre- or post-LN, ReLU (Opt/).</summary>
    Opt,
    /// <summary>GPT-J: interleaved partial RoPE, one LayerNorm feeding a parallel attention + MLP, biased lm_head (GptJ/).</summary>
    GptJ,
    /// <summary>BLOOM: ALiBi, embedding LayerNorm, per-head fused QKV (Bloom/).</summary>
    Bloom,
    /// <summary>RWKV-4: no attention; time mix (the WKV recurrence) and channel mix with token shift, a recurrent state (Rwkv/).</summary>
    Rwkv,
}

/// <summary>
/// Shape and numerics of a decoder-only transformer, read from and written to HF <c>config.json</c>.
/// Field names follow the LLaMA config; GPT-2's <c>n_embd</c>/<c>n_layer</c>/… are mapped on read and write.
/// </summary>
public sealed partial record TransformerConfig
{
    /// <summary>HF <c>model_type</c>: gpt2, llama, mistral or qwen2.</summary>
    public required string ModelType { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int MaxPositions { get; init; }
    public double NormEps { get; init; } = 1e-5;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on q, k and v projections (Qwen2 always; LLaMA's <c>attention_bias</c> also biases o).</summary>
    public bool QkvBias { get; init; }
    public bool OutputBias { get; init; }
    public bool MlpBias { get; init; }
    /// <summary>HF <c>hidden_act</c> / GPT-2 <c>activation_function</c>.</summary>
    public string HiddenAct { get; init; } = "silu";
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    /// <summary>Outputs of the score head of a <c>*ForSequenceClassification</c> model (1 for a reward model).</summary>
    public int NumLabels { get; init; } = 2;
    /// <summary>
    /// A reward model's mean and standard deviation on SFT demonstrations: its outputs become (r − mean) / std, so
    /// demonstrations score 0 on average (InstructGPT §3.5). Stored and applied as OpenRLHF does: <c>normalize_reward</c>,
    /// <c>mean</c>, <c>std</c> in config.json.
    /// </summary>
    public double? RewardMean { get; init; }
    public double? RewardStd { get; init; }
    /// <summary>HF <c>head_dim</c>; hidden/heads unless the checkpoint says otherwise.</summary>
    public int? ExplicitHeadDim { get; init; }

    /// <summary>The body class and weight map this <c>model_type</c> uses (<see cref="DecoderBody.Create"/>).</summary>
    public ModelFamily Family => ModelType switch
    {
        "gpt2" => ModelFamily.Gpt2,
        "gpt_neox" => ModelFamily.Neox,
        "opt" => ModelFamily.Opt,
        "gptj" => ModelFamily.GptJ,
        "bloom" => ModelFamily.Bloom,
        "rwkv" => ModelFamily.Rwkv,
        _ => ModelFamily.Llama,
    };
    public int HeadDim => ExplicitHeadDim ?? HiddenSize / NumHeads;

    /// <summary>Number of trainable scalars in the transformer body and LM head (tied weights counted once).</summary>
    public long ParameterCount()
    {
        if (Family switch { ModelFamily.Neox => NeoxParameterCount(), ModelFamily.Opt => OptParameterCount(), ModelFamily.GptJ => GptJParameterCount(),
                ModelFamily.Bloom => BloomParameterCount(), ModelFamily.Rwkv => RwkvParameterCount(), _ => (long?)null } is long own) return own;
        long h = HiddenSize, kv = (long)NumKvHeads * HeadDim, q = (long)NumHeads * HeadDim;
        long attn = h * q + 2 * h * kv + q * h + (QkvBias ? q + 2 * kv : 0) + (OutputBias ? h : 0);
        long mlp = Family == ModelFamily.Gpt2
            ? 2 * h * IntermediateSize + IntermediateSize + h
            : 3 * h * IntermediateSize + (MlpBias ? 2 * IntermediateSize + h : 0);
        long norms = Family == ModelFamily.Gpt2 ? 4 * h : 2 * h;
        long body = NumLayers * (attn + mlp + norms) + VocabSize * h + (Family == ModelFamily.Gpt2 ? MaxPositions * h + 2 * h : h);
        return body + (TieWordEmbeddings ? 0 : VocabSize * h) + VariantParameterDelta();
    }

    /// <summary>Reads an HF <c>config.json</c>; errors name the file and the key.</summary>
    public static TransformerConfig Load(string path)
    {
        if (!File.Exists(path)) throw new RlhfException($"{path}: file not found (a Hugging Face model folder needs config.json).");
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new RlhfException($"{path}: not a JSON object."); }
        catch (JsonException e) { throw new RlhfException($"{path}: invalid JSON ({e.Message})."); }
        return FromJson(json, path);
    }

    public static TransformerConfig FromJson(JsonObject j, string source) => Checked(WithDropout(Refine(Parse(j, source), j, source), j, source), source);

    /// <summary>Sizes that would otherwise fail deep inside TorchSharp (a negative dimension, a division by zero).</summary>
    static TransformerConfig Checked(TransformerConfig c, string source)
    {
        void Positive(int value, string key) { if (value < 1) throw new RlhfException($"{source}: {key} must be at least 1, got {value}."); }
        Positive(c.VocabSize, "vocab_size");
        Positive(c.HiddenSize, "hidden_size (n_embd)");
        Positive(c.IntermediateSize, "intermediate_size (n_inner)");
        Positive(c.NumLayers, "num_hidden_layers (n_layer)");
        Positive(c.NumHeads, "num_attention_heads (n_head)");
        Positive(c.NumKvHeads, "num_key_value_heads");
        Positive(c.MaxPositions, "max_position_embeddings (n_positions)");
        if (c.ExplicitHeadDim is int hd) Positive(hd, "head_dim");
        // A zero or negative epsilon divides by zero (or takes the root of a negative) on an all-zero row; a
        // non-positive RoPE base gives NaN angles. Both would load silently and produce NaN logits.
        string epsKey = c.Family == ModelFamily.Gpt2 ? "layer_norm_epsilon" : "rms_norm_eps";
        if (!(c.NormEps > 0) || !double.IsFinite(c.NormEps)) throw new RlhfException($"{source}: {epsKey} must be a positive number, got {c.NormEps}.");
        if (c.Family == ModelFamily.Llama && (!(c.RopeTheta > 0) || !double.IsFinite(c.RopeTheta)))
            throw new RlhfException($"{source}: rope_theta must be a positive number, got {c.RopeTheta}.");
        if (c.RopeScaling is { } rs && (!(rs.Factor > 0) || !double.IsFinite(rs.Factor)))
            throw new RlhfException($"{source}: rope_scaling.factor must be a positive number, got {rs.Factor}.");
        if (c.ExplicitHeadDim is null && c.HiddenSize % c.NumHeads != 0)
            throw new RlhfException($"{source}: hidden_size {c.HiddenSize} is not divisible by num_attention_heads {c.NumHeads}.");
        if (c.NumHeads % c.NumKvHeads != 0)
            throw new RlhfException($"{source}: num_attention_heads {c.NumHeads} is not a multiple of num_key_value_heads {c.NumKvHeads}.");
        return c;
    }

    static TransformerConfig Parse(JsonObject j, string source)
    {
        string modelType = Str(j, "model_type", source) ?? throw Missing(source, "model_type");
        switch (modelType)
        {
            case "gpt2":
            {
                int hidden = Int(j, "n_embd", source) ?? throw Missing(source, "n_embd");
                int heads = Int(j, "n_head", source) ?? throw Missing(source, "n_head");
                string act = Str(j, "activation_function", source) ?? "gelu_new";
                return new TransformerConfig
                {
                    ModelType = modelType,
                    VocabSize = Int(j, "vocab_size", source) ?? throw Missing(source, "vocab_size"),
                    HiddenSize = hidden,
                    IntermediateSize = Int(j, "n_inner", source) ?? 4 * hidden,
                    NumLayers = Int(j, "n_layer", source) ?? throw Missing(source, "n_layer"),
                    NumHeads = heads,
                    NumKvHeads = heads,
                    MaxPositions = Int(j, "n_positions", source) ?? 1024,
                    NormEps = Dbl(j, "layer_norm_epsilon", source) ?? 1e-5,
                    TieWordEmbeddings = Bool(j, "tie_word_embeddings", source) ?? true,
                    QkvBias = true, OutputBias = true, MlpBias = true,
                    HiddenAct = CheckAct(act, source, "activation_function"),
                }.WithTokensAndLabels(j, source);
            }
            case "llama" or "mistral" or "qwen2":
            case "gemma" or "gemma2" or "phi3" or "mixtral" or "qwen2_moe": // their own keys: TransformerConfig.Variants.cs
            {
                int heads = Int(j, "num_attention_heads", source) ?? throw Missing(source, "num_attention_heads");
                bool attnBias = Bool(j, "attention_bias", source) ?? false;
                return new TransformerConfig
                {
                    ModelType = modelType,
                    VocabSize = Int(j, "vocab_size", source) ?? throw Missing(source, "vocab_size"),
                    HiddenSize = Int(j, "hidden_size", source) ?? throw Missing(source, "hidden_size"),
                    IntermediateSize = Int(j, "intermediate_size", source) ?? throw Missing(source, "intermediate_size"),
                    NumLayers = Int(j, "num_hidden_layers", source) ?? throw Missing(source, "num_hidden_layers"),
                    NumHeads = heads,
                    NumKvHeads = Int(j, "num_key_value_heads", source) ?? heads,
                    MaxPositions = Int(j, "max_position_embeddings", source) ?? 2048,
                    NormEps = Dbl(j, "rms_norm_eps", source) ?? 1e-6,
                    RopeTheta = Dbl(j, "rope_theta", source) ?? 10000.0,
                    RopeScaling = modelType == "phi3" ? null : Scaling(j, source), // phi3's longrope: Phi3Scaling
                    TieWordEmbeddings = Bool(j, "tie_word_embeddings", source) ?? false,
                    QkvBias = modelType == "qwen2" || attnBias,
                    OutputBias = modelType != "qwen2" && attnBias,
                    MlpBias = Bool(j, "mlp_bias", source) ?? false,
                    HiddenAct = CheckAct(Str(j, "hidden_act", source) ?? "silu", source, "hidden_act"),
                    ExplicitHeadDim = Int(j, "head_dim", source),
                }.WithTokensAndLabels(j, source);
            }
            case "gpt_neox": return ParseNeox(j, source);
            case "opt": return ParseOpt(j, source);
            case "gptj": return ParseGptJ(j, source);
            case "bloom": return ParseBloom(j, source);
            case "rwkv": return ParseRwkv(j, source);
            default:
                throw new RlhfException($"{source}: model_type '{modelType}' is not supported (supported: gpt2, llama, mistral, qwen2, gemma, gemma2, phi3, mixtral, qwen2_moe, gpt_neox, opt, gptj, bloom, rwkv).");
        }
    }

    /// <summary>The HF <c>config.json</c> for this model, as <c>save_pretrained</c> would write the fields that matter.</summary>
    public JsonObject ToJson(string architecture)
    {
        var j = new JsonObject { ["architectures"] = new JsonArray(architecture), ["model_type"] = ModelType };
        if (Family == ModelFamily.Neox) NeoxToJson(j);
        else if (Family == ModelFamily.Opt) OptToJson(j);
        else if (Family == ModelFamily.GptJ) GptJToJson(j);
        else if (Family == ModelFamily.Bloom) BloomToJson(j);
        else if (Family == ModelFamily.Rwkv) RwkvToJson(j);
        else if (Family == ModelFamily.Gpt2)
        {
            j["vocab_size"] = VocabSize; j["n_embd"] = HiddenSize; j["n_inner"] = IntermediateSize == 4 * HiddenSize ? null : IntermediateSize;
            j["n_layer"] = NumLayers; j["n_head"] = NumHeads; j["n_positions"] = MaxPositions; j["n_ctx"] = MaxPositions;
            j["layer_norm_epsilon"] = NormEps; j["activation_function"] = HiddenAct;
        }
        else
        {
            j["vocab_size"] = VocabSize; j["hidden_size"] = HiddenSize; j["intermediate_size"] = IntermediateSize;
            j["num_hidden_layers"] = NumLayers; j["num_attention_heads"] = NumHeads; j["num_key_value_heads"] = NumKvHeads;
            j["max_position_embeddings"] = MaxPositions; j["rms_norm_eps"] = NormEps; j["rope_theta"] = RopeTheta;
            j["hidden_act"] = HiddenAct; j["mlp_bias"] = MlpBias;
            if (ModelType != "qwen2") j["attention_bias"] = QkvBias;
            if (ExplicitHeadDim is int hd) j["head_dim"] = hd;
            j["rope_scaling"] = RopeScaling is null ? null : new JsonObject
            {
                ["rope_type"] = RopeScaling.Type, ["factor"] = RopeScaling.Factor,
                ["low_freq_factor"] = RopeScaling.LowFreqFactor, ["high_freq_factor"] = RopeScaling.HighFreqFactor,
                ["original_max_position_embeddings"] = RopeScaling.OriginalMaxPositionEmbeddings,
            };
        }
        VariantJson(j);
        DropoutJson(j);
        j["tie_word_embeddings"] = TieWordEmbeddings;
        j["bos_token_id"] = BosTokenId;
        j["eos_token_id"] = EosTokenIds.Count switch { 0 => null, 1 => EosTokenIds[0], _ => new JsonArray(EosTokenIds.Select(e => (JsonNode)e).ToArray()) };
        j["pad_token_id"] = PadTokenId;
        if (architecture.EndsWith("ForSequenceClassification"))
        {
            var id2label = new JsonObject(); var label2id = new JsonObject();
            for (int i = 0; i < NumLabels; i++) { id2label[i.ToString()] = $"LABEL_{i}"; label2id[$"LABEL_{i}"] = i; }
            j["id2label"] = id2label; j["label2id"] = label2id;
            if (RewardMean is double mean) { j["normalize_reward"] = true; j["mean"] = mean; j["std"] = RewardStd ?? 1.0; }
        }
        j["torch_dtype"] = "float32";
        j["transformers_version"] = "4.44.0";
        return j;
    }

    static RlhfException Missing(string source, string key) => new($"{source}: required key '{key}' is missing.");

    static string CheckAct(string act, string source, string key) =>
        Activation.IsSupported(act) ? act : throw new RlhfException($"{source}: {key} '{act}' is not supported (supported: {Activation.Names}).");

    static int Labels(JsonObject j, string source)
    {
        if (j["id2label"] is JsonObject map) return map.Count;
        return Int(j, "num_labels", source) ?? 2;
    }

    static RopeScaling? Scaling(JsonObject j, string source)
    {
        if (j["rope_scaling"] is not JsonObject s) return null;
        string type = (s["rope_type"] ?? s["type"])?.GetValue<string>() ?? throw Missing(source, "rope_scaling.rope_type");
        if (type == "default") return null;
        double factor = Dbl(s, "factor", source) ?? throw Missing(source, "rope_scaling.factor");
        var r = new RopeScaling(type, factor,
            Dbl(s, "low_freq_factor", source) ?? 1.0, Dbl(s, "high_freq_factor", source) ?? 4.0,
            Int(s, "original_max_position_embeddings", source) ?? 8192);
        RopeScaling.InverseFrequencies(2, 10000, r); // rejects unknown kinds at load time, naming them
        return r;
    }

    static JsonNode? Node(JsonObject j, string key) => j.TryGetPropertyValue(key, out var n) ? n : null;

    static string? Str(JsonObject j, string key, string source)
    {
        var n = Node(j, key);
        if (n is null) return null;
        try { return n.GetValue<string>(); } catch (Exception) { throw new RlhfException($"{source}: key '{key}' must be a string, got {n.ToJsonString()}."); }
    }

    static int? Int(JsonObject j, string key, string source)
    {
        var n = Node(j, key);
        if (n is null) return null;
        try { return n.GetValue<int>(); }
        catch (Exception)
        {
            try { double d = n.GetValue<double>(); if (d == Math.Floor(d)) return (int)d; } catch (Exception) { }
            throw new RlhfException($"{source}: key '{key}' must be an integer, got {n.ToJsonString()}.");
        }
    }

    static double? Dbl(JsonObject j, string key, string source)
    {
        var n = Node(j, key);
        if (n is null) return null;
        try { return n.GetValue<double>(); } catch (Exception) { throw new RlhfException($"{source}: key '{key}' must be a number, got {n.ToJsonString()}."); }
    }

    static bool? Bool(JsonObject j, string key, string source)
    {
        var n = Node(j, key);
        if (n is null) return null;
        try { return n.GetValue<bool>(); } catch (Exception) { throw new RlhfException($"{source}: key '{key}' must be true or false, got {n.ToJsonString()}."); }
    }

    static IReadOnlyList<int> Ids(JsonObject j, string key, string source)
    {
        var n = Node(j, key);
        if (n is null) return [];
        if (n is JsonArray a) return a.Select((x, i) => x?.GetValue<int>() ?? throw new RlhfException($"{source}: {key}[{i}] is null.")).ToArray();
        return [Int(j, key, source)!.Value];
    }
}
