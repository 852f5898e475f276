using System.Text.Json.Nodes;

namespace RlhfSharp.Models;

/// <summary>
/// The LLaMA variants of transformers v4.44 that one <see cref="Transformer"/> covers besides LLaMA itself: Mistral's
/// and Qwen2's sliding window, Gemma, Gemma 2, Phi-3, and the sparse mixtures of experts Mixtral and Qwen2-MoE. Each
/// field is what one <c>config.json</c> key turns on; a key whose meaning is not implemented is refused by name
/// (<see cref="Refine"/>) instead of being ignored, so a checkpoint is either run as HF runs it or not at all.
/// </summary>
public sealed partial record TransformerConfig
{
    /// <summary>HF <c>sliding_window</c> where it is in force: a query at column i sees key j only if i − j &lt; window.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Which layers the window applies to (<see cref="WindowedLayers"/>).</summary>
    public WindowPattern WindowLayers { get; init; } = WindowPattern.All;
    /// <summary>Qwen2's <c>max_window_layers</c>: with <see cref="WindowPattern.FromLayer"/>, layers at or above it are windowed.</summary>
    public int WindowFromLayer { get; init; }
    /// <summary>Gemma: embeddings multiplied by sqrt(hidden_size) in the activations' dtype, RMSNorm by (1 + weight).</summary>
    public bool GemmaNorms { get; init; }
    /// <summary>Gemma 2: four norms per layer (a norm after attention and after the MLP too).</summary>
    public bool SandwichNorms { get; init; }
    /// <summary>Gemma 2's <c>query_pre_attn_scalar</c>: scores scaled by its −½ power instead of head_dim's.</summary>
    public double? QueryPreAttnScalar { get; init; }
    /// <summary>Gemma 2's <c>attn_logit_softcapping</c>: scores become cap·tanh(scores/cap) before the mask.</summary>
    public double? AttnLogitSoftcap { get; init; }
    /// <summary>Gemma 2's <c>final_logit_softcapping</c>: the LM head's logits become cap·tanh(logits/cap).</summary>
    public double? FinalLogitSoftcap { get; init; }
    /// <summary>Phi-3: HF stores q/k/v as one <c>qkv_proj</c> and gate/up as one <c>gate_up_proj</c>, the layout we use.</summary>
    public bool HfFusedProjections { get; init; }
    /// <summary>The sparse mixture of experts (Mixtral, Qwen2-MoE), or null for a dense MLP in every layer.</summary>
    public MoeConfig? Moe { get; init; }

    /// <summary>The LLaMA-variant model types (<see cref="ModelFamily.Llama"/>) whose config this file reads.</summary>
    public static readonly string[] VariantModelTypes = ["gemma", "gemma2", "phi3", "mixtral", "qwen2_moe"];

    /// <summary>True when layer <paramref name="layer"/> attends through the sliding window.</summary>
    public bool WindowedLayers(int layer) => SlidingWindow is not null && WindowLayers switch
    {
        WindowPattern.All => true,
        WindowPattern.EvenLayers => layer % 2 == 0, // Gemma 2: is_sliding = not bool(layer_idx % 2)
        WindowPattern.FromLayer => layer >= WindowFromLayer,
        _ => false,
    };

    /// <summary>True when layer <paramref name="layer"/> has a sparse MoE block rather than a dense MLP.</summary>
    public bool SparseLayer(int layer) => Moe is { } m && !m.MlpOnlyLayers.Contains(layer) && (layer + 1) % m.DecoderSparseStep == 0;

    /// <summary>True when attention needs scores written out (a scale other than head_dim's, or soft-capping).</summary>
    internal bool ExplicitAttentionScores => QueryPreAttnScalar is not null || AttnLogitSoftcap is not null;

    /// <summary>The parameters the variants add to (or take from) the dense LLaMA count of <see cref="ParameterCount"/>.</summary>
    long VariantParameterDelta()
    {
        long h = HiddenSize, delta = 0;
        if (SandwichNorms) delta += NumLayers * 2 * h;
        if (Moe is { } m)
            for (int i = 0; i < NumLayers; i++)
            {
                if (!SparseLayer(i)) continue;
                delta -= 3 * h * IntermediateSize; // the dense MLP counted by ParameterCount
                delta += m.NumExperts * 3 * h * m.ExpertSize + m.NumExperts * h;
                if (m.SharedExpertSize is int s) delta += 3 * h * s + h;
            }
        return delta;
    }

    /// <summary>
    /// The variant keys of an HF config for the LLaMA-family model types, and a refusal, naming the key, of every
    /// setting whose meaning is not implemented here. Defaults are the v4.44 config classes' (configuration_*.py).
    /// </summary>
    static TransformerConfig Refine(TransformerConfig c, JsonObject j, string source)
    {
        if (c.Family != ModelFamily.Llama) return c;
        string type = c.ModelType;
        void Refuse(string key, string why) => throw new RlhfException($"{source}: {key} {why} (model_type {type}): not implemented, so the model would run differently from transformers.");
        if (Dbl(j, "partial_rotary_factor", source) is double prf && prf != 1.0) Refuse("partial_rotary_factor", $"= {prf}");
        if (Str(j, "rope_type", source) is string rt && rt != "default") Refuse("rope_type", $"'{rt}'");

        // Sliding windows: Mistral and Mixtral window every layer (MistralConfig defaults sliding_window to 4096, Mixtral
        // to None); Qwen2 and Qwen2-MoE only with use_sliding_window, and only from layer max_window_layers on (as the
        // flash-attention path of v4.44 does; its eager path ignores the window, a difference later versions removed);
        // Gemma 2 on even layers (default 4096); Phi-3 on every layer (default None).
        int? window = type switch
        {
            "mistral" => j.ContainsKey("sliding_window") ? Int(j, "sliding_window", source) : 4096,
            "gemma2" => j.ContainsKey("sliding_window") ? Int(j, "sliding_window", source) : 4096,
            "mixtral" or "phi3" => Int(j, "sliding_window", source),
            "qwen2" or "qwen2_moe" => Bool(j, "use_sliding_window", source) == true
                ? (j.ContainsKey("sliding_window") ? Int(j, "sliding_window", source) : 4096) : null,
            _ => null, // llama, gemma: no window in their attention
        };
        if (type is "llama" or "gemma" && j.ContainsKey("sliding_window") && Int(j, "sliding_window", source) is int ignored)
            Refuse("sliding_window", $"= {ignored}: {type} has no sliding window");
        if (window is int w && w < 1) throw new RlhfException($"{source}: sliding_window must be at least 1, got {w}.");
        c = c with
        {
            SlidingWindow = window,
            WindowLayers = type switch { "gemma2" => WindowPattern.EvenLayers, "qwen2" or "qwen2_moe" => WindowPattern.FromLayer, _ => WindowPattern.All },
            WindowFromLayer = type is "qwen2" or "qwen2_moe" ? Int(j, "max_window_layers", source) ?? 28 : 0,
        };
        switch (type)
        {
            case "gemma":
            case "gemma2":
            {
                // GemmaMLP uses hidden_activation; v4.44 falls back to gelu_pytorch_tanh when it is null, whatever hidden_act says.
                string act = Str(j, "hidden_activation", source) ?? "gelu_pytorch_tanh";
                c = c with
                {
                    GemmaNorms = true,
                    HiddenAct = CheckAct(act, source, "hidden_activation"),
                    TieWordEmbeddings = Bool(j, "tie_word_embeddings", source) ?? true,
                    ExplicitHeadDim = Int(j, "head_dim", source) ?? 256,
                };
                if (type == "gemma2")
                    c = c with
                    {
                        SandwichNorms = true,
                        QueryPreAttnScalar = Dbl(j, "query_pre_attn_scalar", source) ?? 224,
                        AttnLogitSoftcap = j.ContainsKey("attn_logit_softcapping") ? Dbl(j, "attn_logit_softcapping", source) : 50.0,
                        FinalLogitSoftcap = j.ContainsKey("final_logit_softcapping") ? Dbl(j, "final_logit_softcapping", source) : 30.0,
                    };
                if (c.QueryPreAttnScalar is double q && !(q > 0)) throw new RlhfException($"{source}: query_pre_attn_scalar must be positive, got {q}.");
                if (c.AttnLogitSoftcap is double a && !(a > 0)) throw new RlhfException($"{source}: attn_logit_softcapping must be positive or null, got {a}.");
                if (c.FinalLogitSoftcap is double f && !(f > 0)) throw new RlhfException($"{source}: final_logit_softcapping must be positive or null, got {f}.");
                break;
            }
            case "phi3":
                c = c with { HfFusedProjections = true, QkvBias = false, OutputBias = false, RopeScaling = Phi3Scaling(j, source, c) };
                break;
            case "mixtral":
            case "qwen2_moe":
                if (Dbl(j, "router_jitter_noise", source) is double jitter && jitter != 0) Refuse("router_jitter_noise", $"= {jitter}: router noise in training");
                bool qwen = type == "qwen2_moe";
                var moe = new MoeConfig
                {
                    NumExperts = Int(j, qwen ? "num_experts" : "num_local_experts", source) ?? (qwen ? 60 : 8),
                    TopK = Int(j, "num_experts_per_tok", source) ?? (qwen ? 4 : 2),
                    // Mixtral always renormalises the top-k weights; Qwen2-MoE only with norm_topk_prob.
                    NormTopK = !qwen || (Bool(j, "norm_topk_prob", source) ?? false),
                    ExpertSize = qwen ? Int(j, "moe_intermediate_size", source) ?? 1408 : c.IntermediateSize,
                    SharedExpertSize = qwen ? Int(j, "shared_expert_intermediate_size", source) ?? 5632 : null,
                    DecoderSparseStep = qwen ? Int(j, "decoder_sparse_step", source) ?? 1 : 1,
                    MlpOnlyLayers = qwen && j["mlp_only_layers"] is JsonArray only
                        ? only.Select((x, i) => x?.GetValue<int>() ?? throw new RlhfException($"{source}: mlp_only_layers[{i}] is null.")).ToArray() : [],
                    OutputRouterLogits = Bool(j, "output_router_logits", source) ?? false,
                    RouterAuxLossCoef = Dbl(j, "router_aux_loss_coef", source) ?? 0.001,
                };
                if (moe.NumExperts < 1) throw new RlhfException($"{source}: {(qwen ? "num_experts" : "num_local_experts")} must be at least 1, got {moe.NumExperts}.");
                if (moe.TopK < 1 || moe.TopK > moe.NumExperts) throw new RlhfException($"{source}: num_experts_per_tok must be in 1..{moe.NumExperts}, got {moe.TopK}.");
                if (moe.ExpertSize < 1) throw new RlhfException($"{source}: moe_intermediate_size must be at least 1, got {moe.ExpertSize}.");
                if (moe.SharedExpertSize is int se && se < 1) throw new RlhfException($"{source}: shared_expert_intermediate_size must be at least 1, got {se}.");
                if (moe.DecoderSparseStep < 1) throw new RlhfException($"{source}: decoder_sparse_step must be at least 1, got {moe.DecoderSparseStep}.");
                c = c with { Moe = moe };
                if (qwen) c = c with { QkvBias = true, OutputBias = false };
                break;
        }
        return c;
    }

    /// <summary>
    /// Phi-3's <c>rope_scaling</c>: null, or <c>longrope</c> with <c>short_factor</c>/<c>long_factor</c> (one per frequency)
    /// and the top-level <c>original_max_position_embeddings</c> (Phi3LongRoPEScaledRotaryEmbedding, v4.44).
    /// </summary>
    static RopeScaling? Phi3Scaling(JsonObject j, string source, TransformerConfig c)
    {
        if (j["rope_scaling"] is not JsonObject s) return null;
        string type = (s["type"] ?? s["rope_type"])?.GetValue<string>() ?? throw Missing(source, "rope_scaling.type");
        if (type != "longrope") throw new RlhfException($"{source}: rope_scaling type '{type}' is not supported for phi3 (supported: longrope).");
        foreach (var (key, _) in s)
            if (key is not ("type" or "rope_type" or "short_factor" or "long_factor"))
                throw new RlhfException($"{source}: rope_scaling.{key} is not implemented for phi3 longrope.");
        double[] Factors(string key)
        {
            if (s[key] is not JsonArray a) throw Missing(source, $"rope_scaling.{key}");
            var f = a.Select((x, i) => x?.GetValue<double>() ?? throw new RlhfException($"{source}: rope_scaling.{key}[{i}] is null.")).ToArray();
            if (f.Length != c.HeadDim / 2) throw new RlhfException($"{source}: rope_scaling.{key} has {f.Length} factors, head_dim/2 = {c.HeadDim / 2} expected.");
            return f;
        }
        int original = Int(j, "original_max_position_embeddings", source) ?? throw Missing(source, "original_max_position_embeddings");
        return new RopeScaling("longrope", 1.0, OriginalMaxPositionEmbeddings: original)
        {
            ShortFactor = Factors("short_factor"), LongFactor = Factors("long_factor"), MaxPositionEmbeddings = c.MaxPositions,
        };
    }

    /// <summary>Writes the variant keys into <paramref name="j"/> (the rest of <see cref="ToJson"/>), as the v4.44 config classes name them.</summary>
    void VariantJson(JsonObject j)
    {
        if (Family != ModelFamily.Llama) return;
        switch (ModelType)
        {
            case "mistral" or "mixtral" or "phi3" or "gemma2": j["sliding_window"] = SlidingWindow; break;
            case "qwen2" or "qwen2_moe":
                j["use_sliding_window"] = SlidingWindow is not null;
                if (SlidingWindow is int w) j["sliding_window"] = w;
                j["max_window_layers"] = WindowFromLayer;
                break;
        }
        if (GemmaNorms) { j["hidden_activation"] = HiddenAct; j["head_dim"] = HeadDim; }
        if (SandwichNorms)
        {
            j["query_pre_attn_scalar"] = QueryPreAttnScalar;
            j["attn_logit_softcapping"] = AttnLogitSoftcap;
            j["final_logit_softcapping"] = FinalLogitSoftcap;
        }
        if (ModelType == "phi3")
        {
            j.Remove("attention_bias"); j.Remove("mlp_bias"); j.Remove("head_dim");
            j["original_max_position_embeddings"] = RopeScaling?.OriginalMaxPositionEmbeddings ?? MaxPositions;
            j["rope_scaling"] = RopeScaling is { } rs ? new JsonObject
            {
                ["type"] = "longrope",
                ["short_factor"] = new JsonArray(rs.ShortFactor!.Select(x => (JsonNode)x).ToArray()),
                ["long_factor"] = new JsonArray(rs.LongFactor!.Select(x => (JsonNode)x).ToArray()),
            } : null;
        }
        if (Moe is { } m)
        {
            j["num_experts_per_tok"] = m.TopK;
            j["output_router_logits"] = m.OutputRouterLogits;
            j["router_aux_loss_coef"] = m.RouterAuxLossCoef;
            if (ModelType == "mixtral") j["num_local_experts"] = m.NumExperts;
            else
            {
                j["num_experts"] = m.NumExperts; j["moe_intermediate_size"] = m.ExpertSize;
                j["shared_expert_intermediate_size"] = m.SharedExpertSize; j["norm_topk_prob"] = m.NormTopK;
                j["decoder_sparse_step"] = m.DecoderSparseStep;
                j["mlp_only_layers"] = new JsonArray(m.MlpOnlyLayers.Select(x => (JsonNode)x).ToArray());
                j.Remove("attention_bias");
            }
        }
    }
}

/// <summary>Which layers a sliding window applies to.</summary>
public enum WindowPattern
{
    /// <summary>Every layer (Mistral, Mixtral, Phi-3).</summary>
    All,
    /// <summary>Layers 0, 2, 4, … (Gemma 2).</summary>
    EvenLayers,
    /// <summary>Layers from <see cref="TransformerConfig.WindowFromLayer"/> on (Qwen2's max_window_layers).</summary>
    FromLayer,
}

/// <summary>
/// A sparse mixture-of-experts MLP (Shazeer et al. 2017; Mixtral, Jiang et al. 2024; Qwen2-MoE): a float32 softmax
/// router picks <see cref="TopK"/> of <see cref="NumExperts"/> SwiGLU experts per token.
/// </summary>
public sealed record MoeConfig
{
    public required int NumExperts { get; init; }
    public required int TopK { get; init; }
    /// <summary>Divide the chosen weights by their sum (Mixtral always; Qwen2-MoE's <c>norm_topk_prob</c>).</summary>
    public required bool NormTopK { get; init; }
    /// <summary>Each expert's intermediate width.</summary>
    public required int ExpertSize { get; init; }
    /// <summary>Qwen2-MoE's always-on shared expert, gated by sigmoid(shared_expert_gate(x)); null for Mixtral.</summary>
    public int? SharedExpertSize { get; init; }
    /// <summary>Qwen2-MoE: layer i is sparse when (i + 1) % step == 0 and i is not in <see cref="MlpOnlyLayers"/>.</summary>
    public int DecoderSparseStep { get; init; } = 1;
    public IReadOnlyList<int> MlpOnlyLayers { get; init; } = [];
    /// <summary>HF adds the router's load-balancing loss to the LM loss only when this is true.</summary>
    public bool OutputRouterLogits { get; init; }
    /// <summary>The weight of that loss (<c>router_aux_loss_coef</c>, HF default 0.001).</summary>
    public double RouterAuxLossCoef { get; init; } = 0.001;
}
