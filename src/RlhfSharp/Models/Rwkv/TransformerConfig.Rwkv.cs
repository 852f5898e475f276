using System.Text.Json.Nodes;

namespace RlhfSharp.Models;

// RWKV-4 config.json: transformers v4.44 models/rwkv/configuration_rwkv.py (RwkvConfig); defaults cited from there.
public sealed partial record TransformerConfig
{
    /// <summary>
    /// RWKV <c>rescale_every</c>: at inference (eval mode) block i's output projections are divided by 2^(i / n) and the
    /// residual stream is halved after every n blocks, to keep float16 in range; 0 (or less) turns it off.
    /// </summary>
    public int RescaleEvery { get; init; }

    /// <summary>RWKV <c>attention_hidden_size</c>: the width of the time mix's key, value and receptance (hidden_size by default).</summary>
    public int AttentionHiddenSize { get; init; }

    static TransformerConfig ParseRwkv(JsonObject j, string source)
    {
        int hidden = Int(j, "hidden_size", source) ?? 4096;   // RwkvConfig defaults (the 7B shape)
        double eps = Dbl(j, "layer_norm_epsilon", source) ?? 1e-5;
        if (!(eps > 0) || !double.IsFinite(eps)) throw new RlhfException($"{source}: layer_norm_epsilon must be a positive number, got {eps}.");
        return new TransformerConfig
        {
            ModelType = "rwkv",
            VocabSize = Int(j, "vocab_size", source) ?? 50277,
            HiddenSize = hidden,
            AttentionHiddenSize = Int(j, "attention_hidden_size", source) ?? hidden,
            IntermediateSize = Int(j, "intermediate_size", source) ?? 4 * hidden,
            NumLayers = Int(j, "num_hidden_layers", source) ?? 32,
            // No attention heads: one "head" of the full width keeps the shared checks and sizes meaningful.
            NumHeads = 1,
            NumKvHeads = 1,
            // context_length only sizes HF's CUDA kernel (RNN mode runs any length); the rest of the stack reads it as the
            // context the model was trained on, as max_position_embeddings (RwkvConfig.attribute_map).
            MaxPositions = Int(j, "context_length", source) ?? 1024,
            NormEps = eps,
            RescaleEvery = Int(j, "rescale_every", source) ?? 6,
            TieWordEmbeddings = Bool(j, "tie_word_embeddings", source) ?? false,
            HiddenAct = "relu", // the channel mix's squared ReLU, fixed in modeling_rwkv.py
        }.WithTokensAndLabels(j, source);
    }

    void RwkvToJson(JsonObject j)
    {
        j["vocab_size"] = VocabSize; j["hidden_size"] = HiddenSize; j["attention_hidden_size"] = AttentionHiddenSize;
        j["intermediate_size"] = IntermediateSize; j["num_hidden_layers"] = NumLayers; j["context_length"] = MaxPositions;
        j["layer_norm_epsilon"] = NormEps; j["rescale_every"] = RescaleEvery; j["use_cache"] = true;
    }

    long RwkvParameterCount()
    {
        long h = HiddenSize, a = AttentionHiddenSize, i = IntermediateSize;
        long timeMix = 2 * a + 3 * h + 3 * h * a + a * h;  // time_decay, time_first, 3 time_mix, key/value/receptance, output
        long channelMix = 2 * h + 2 * h * i + h * h;        // 2 time_mix, key, value, receptance
        long layer = 4 * h + timeMix + channelMix;          // ln1, ln2
        return VocabSize * h + 2 * h + NumLayers * layer + 2 * h + LmHeadParameters; // embeddings, pre_ln, blocks, ln_out, head
    }
}
