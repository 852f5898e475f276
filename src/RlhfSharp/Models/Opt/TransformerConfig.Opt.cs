using System.Text.Json.Nodes;

namespace RlhfSharp.Models;

// OPT config.json: transformers v4.44 models/opt/configuration_opt.py; defaults cited from there (the 350M shape).
public sealed partial record TransformerConfig
{
    /// <summary>OPT <c>word_embed_proj_dim</c>: the embedding width; when it differs from hidden_size, project_in/project_out map between them.</summary>
    public int? WordEmbedProjDim { get; init; }

    /// <summary>OPT <c>do_layer_norm_before</c>: pre-LN blocks (true) or post-LN blocks (false, OPT-350M).</summary>
    public bool LayerNormBefore { get; init; } = true;

    /// <summary>OPT's decoder-level <c>final_layer_norm</c> exists: only with pre-LN and without <c>_remove_final_layer_norm</c>.</summary>
    public bool OptFinalNorm { get; init; } = true;

    /// <summary>The width of OPT's embeddings and of its heads' input.</summary>
    public int OptProjectionDim => WordEmbedProjDim ?? HiddenSize;

    /// <summary>OPT's learned position table skips two rows (OPTLearnedPositionalEmbedding.offset, a fairseq legacy).</summary>
    public const int OptPositionOffset = 2;

    static TransformerConfig ParseOpt(JsonObject j, string source)
    {
        int hidden = Int(j, "hidden_size", source) ?? 768;
        bool before = Bool(j, "do_layer_norm_before", source) ?? true;
        bool bias = Bool(j, "enable_bias", source) ?? true;
        if (Bool(j, "layer_norm_elementwise_affine", source) == false)
            throw new RlhfException($"{source}: layer_norm_elementwise_affine false is not supported for opt.");
        // normEps fixed: OPT's LayerNorms use nn.LayerNorm's default and config.json has no eps.
        return (MultiHead("opt", vocab: Int(j, "vocab_size", source) ?? 50272, hidden, intermediate: Int(j, "ffn_dim", source) ?? 3072,
            layers: Int(j, "num_hidden_layers", source) ?? 12, heads: Int(j, "num_attention_heads", source) ?? 12,
            positions: Int(j, "max_position_embeddings", source) ?? 2048, normEps: 1e-5) with
        {
            WordEmbedProjDim = Int(j, "word_embed_proj_dim", source) is int p && p != hidden ? p : null,
            LayerNormBefore = before,
            OptFinalNorm = before && !(Bool(j, "_remove_final_layer_norm", source) ?? false),
            TieWordEmbeddings = Bool(j, "tie_word_embeddings", source) ?? true,
            QkvBias = bias, OutputBias = bias, MlpBias = bias,
            HiddenAct = CheckAct(Str(j, "activation_function", source) ?? "relu", source, "activation_function"),
        }).WithTokensAndLabels(j, source);
    }

    void OptToJson(JsonObject j)
    {
        j["vocab_size"] = VocabSize; j["hidden_size"] = HiddenSize; j["ffn_dim"] = IntermediateSize; j["word_embed_proj_dim"] = OptProjectionDim;
        j["num_hidden_layers"] = NumLayers; j["num_attention_heads"] = NumHeads; j["max_position_embeddings"] = MaxPositions;
        j["do_layer_norm_before"] = LayerNormBefore; j["_remove_final_layer_norm"] = LayerNormBefore && !OptFinalNorm;
        j["enable_bias"] = QkvBias; j["layer_norm_elementwise_affine"] = true; j["activation_function"] = HiddenAct;
    }

    long OptParameterCount()
    {
        long h = HiddenSize, i = IntermediateSize, p = OptProjectionDim;
        long layer = 4 * h * h + 2 * h * i + 4 * h + (QkvBias ? 4 * h + i + h : 0);
        long projections = WordEmbedProjDim is null ? 0 : 2 * h * p;
        return VocabSize * p + (MaxPositions + OptPositionOffset) * h + projections + NumLayers * layer + (OptFinalNorm ? 2 * h : 0) + LmHeadParameters;
    }
}
