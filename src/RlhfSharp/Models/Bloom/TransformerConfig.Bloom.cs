using System.Text.Json.Nodes;

namespace RlhfSharp.Models;

// BLOOM config.json: transformers v4.44 models/bloom/configuration_bloom.py; defaults cited from there.
public sealed partial record TransformerConfig
{
    /// <summary>BLOOM <c>apply_residual_connection_post_layernorm</c>: the residual adds the LayerNorm's output, not its input.</summary>
    public bool ResidualFromNorm { get; init; }

    static TransformerConfig ParseBloom(JsonObject j, string source)
    {
        // BloomConfig still accepts the old n_embed for hidden_size.
        int hidden = Int(j, "n_embed", source) ?? Int(j, "hidden_size", source) ?? 64;
        int heads = Int(j, "n_head", source) ?? Int(j, "num_attention_heads", source) ?? 8;
        double eps = Dbl(j, "layer_norm_epsilon", source) ?? 1e-5;
        if (!(eps > 0) || !double.IsFinite(eps)) throw new RlhfException($"{source}: layer_norm_epsilon must be a positive number, got {eps}.");
        // BloomMLP is always 4 · hidden wide. ALiBi has no position table; BLOOM was trained on 2048 tokens (its
        // seq_length), the length we allow.
        return (MultiHead("bloom", vocab: Int(j, "vocab_size", source) ?? 250880, hidden, intermediate: 4 * hidden,
            layers: Int(j, "n_layer", source) ?? Int(j, "num_hidden_layers", source) ?? 2, heads, positions: Int(j, "seq_length", source) ?? 2048, eps) with
        {
            ResidualFromNorm = Bool(j, "apply_residual_connection_post_layernorm", source) ?? false,
            TieWordEmbeddings = Bool(j, "tie_word_embeddings", source) ?? true,
            QkvBias = true, OutputBias = true, MlpBias = true,
            // bloom_gelu_forward's 0.79788456 rounds to the same float32 as sqrt(2/π): this is PyTorch's tanh GELU.
            HiddenAct = "gelu_pytorch_tanh",
        }).WithTokensAndLabels(j, source);
    }

    void BloomToJson(JsonObject j)
    {
        j["vocab_size"] = VocabSize; j["hidden_size"] = HiddenSize; j["n_layer"] = NumLayers; j["n_head"] = NumHeads; j["seq_length"] = MaxPositions;
        j["layer_norm_epsilon"] = NormEps; j["apply_residual_connection_post_layernorm"] = ResidualFromNorm;
        j["pretraining_tp"] = 1; j["slow_but_exact"] = false;
    }

    long BloomParameterCount()
    {
        long h = HiddenSize, i = IntermediateSize;
        long layer = 4 * h + 4 * h * h + 4 * h + 2 * h * i + i + h;
        return VocabSize * h + 2 * h + NumLayers * layer + 2 * h + LmHeadParameters;
    }
}
