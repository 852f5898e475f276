using System.Text.Json.Nodes;

namespace RlhfSharp.Models;

// GPT-NeoX (Pythia) config.json: transformers v4.44 models/gpt_neox/configuration_gpt_neox.py; defaults cited from there.
public sealed partial record TransformerConfig
{
    /// <summary>Head dims that take rotary embeddings (NeoX: int(head_dim · rotary_pct); GPT-J: rotary_dim); the rest pass through.</summary>
    public int? RotaryDims { get; init; }

    /// <summary>GPT-NeoX <c>use_parallel_residual</c>: x + attn(ln1(x)) + mlp(ln2(x)) instead of two sequential residual steps.</summary>
    public bool ParallelResidual { get; init; }

    static TransformerConfig ParseNeox(JsonObject j, string source)
    {
        int hidden = Int(j, "hidden_size", source) ?? 6144;       // GPTNeoXConfig defaults (the 20B model)
        int heads = Int(j, "num_attention_heads", source) ?? 64;
        double pct = Dbl(j, "rotary_pct", source) ?? 0.25;
        double eps = Dbl(j, "layer_norm_eps", source) ?? 1e-5;
        double theta = Dbl(j, "rotary_emb_base", source) ?? 10000;
        bool bias = Bool(j, "attention_bias", source) ?? true;
        if (!(eps > 0) || !double.IsFinite(eps)) throw new RlhfException($"{source}: layer_norm_eps must be a positive number, got {eps}.");
        if (!(theta > 0) || !double.IsFinite(theta)) throw new RlhfException($"{source}: rotary_emb_base must be a positive number, got {theta}.");
        if (!(pct >= 0 && pct <= 1)) throw new RlhfException($"{source}: rotary_pct must be between 0 and 1, got {pct}.");
        if (j["rope_scaling"] is JsonObject) throw new RlhfException($"{source}: rope_scaling is not supported for gpt_neox.");
        if (heads < 1 || hidden % heads != 0) throw new RlhfException($"{source}: hidden_size {hidden} is not divisible by num_attention_heads {heads}.");
        int rotary = (int)((hidden / heads) * pct); // HF: int(head_size * rotary_pct)
        if (rotary % 2 != 0) throw new RlhfException($"{source}: rotary_pct {pct} gives {rotary} rotary dims; rotary needs an even number.");
        return (MultiHead("gpt_neox", vocab: Int(j, "vocab_size", source) ?? 50432, hidden, intermediate: Int(j, "intermediate_size", source) ?? 24576,
            layers: Int(j, "num_hidden_layers", source) ?? 44, heads, positions: Int(j, "max_position_embeddings", source) ?? 2048, eps) with
        {
            RopeTheta = theta,
            RotaryDims = rotary,
            ParallelResidual = Bool(j, "use_parallel_residual", source) ?? true,
            TieWordEmbeddings = Bool(j, "tie_word_embeddings", source) ?? false,
            QkvBias = bias, OutputBias = bias, MlpBias = true,
            HiddenAct = CheckAct(Str(j, "hidden_act", source) ?? "gelu", source, "hidden_act"),
        }).WithTokensAndLabels(j, source);
    }

    void NeoxToJson(JsonObject j)
    {
        j["vocab_size"] = VocabSize; j["hidden_size"] = HiddenSize; j["intermediate_size"] = IntermediateSize;
        j["num_hidden_layers"] = NumLayers; j["num_attention_heads"] = NumHeads; j["max_position_embeddings"] = MaxPositions;
        j["rotary_pct"] = (double)(RotaryDims ?? 0) / HeadDim; j["rotary_emb_base"] = RopeTheta; j["layer_norm_eps"] = NormEps;
        j["use_parallel_residual"] = ParallelResidual; j["attention_bias"] = QkvBias; j["hidden_act"] = HiddenAct;
    }

    long NeoxParameterCount()
    {
        long h = HiddenSize, i = IntermediateSize;
        long attn = 4 * h * h + (QkvBias ? 4 * h : 0);
        long layer = 4 * h + attn + 2 * h * i + i + h;
        return VocabSize * h + NumLayers * layer + 2 * h + LmHeadParameters;
    }
}
