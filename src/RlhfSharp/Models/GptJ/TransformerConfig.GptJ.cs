using System.Text.Json.Nodes;

namespace RlhfSharp.Models;

// GPT-J config.json: transformers v4.44 models/gptj/configuration_gptj.py; defaults cited from there (GPT-J-6B).
public sealed partial record TransformerConfig
{
    static TransformerConfig ParseGptJ(JsonObject j, string source)
    {
        int hidden = Int(j, "n_embd", source) ?? 4096;
        int heads = Int(j, "n_head", source) ?? 16;
        double eps = Dbl(j, "layer_norm_epsilon", source) ?? 1e-5;
        if (!(eps > 0) || !double.IsFinite(eps)) throw new RlhfException($"{source}: layer_norm_epsilon must be a positive number, got {eps}.");
        if (heads < 1 || hidden % heads != 0) throw new RlhfException($"{source}: n_embd {hidden} is not divisible by n_head {heads}.");
        // rotary_dim null means the whole head (modeling_gptj.py: rotary_dim or embed_dim / heads).
        int rotary = Int(j, "rotary_dim", source) ?? hidden / heads;
        if (rotary % 2 != 0 || rotary > hidden / heads || rotary < 0)
            throw new RlhfException($"{source}: rotary_dim {rotary} must be even and at most the head size {hidden / heads}.");
        // The head's bias has no tied counterpart: a tied GPT-J would need a head of its own for it.
        if (Bool(j, "tie_word_embeddings", source) == true) throw new RlhfException($"{source}: tie_word_embeddings true is not supported for gptj.");
        return (MultiHead("gptj", vocab: Int(j, "vocab_size", source) ?? 50400, hidden, intermediate: Int(j, "n_inner", source) ?? 4 * hidden, // n_inner null: 4 · n_embd
            layers: Int(j, "n_layer", source) ?? 28, heads, positions: Int(j, "n_positions", source) ?? 2048, eps) with
        {
            RotaryDims = rotary,
            LmHeadBias = true,
            TieWordEmbeddings = false,
            QkvBias = false, OutputBias = false, MlpBias = true,
            HiddenAct = CheckAct(Str(j, "activation_function", source) ?? "gelu_new", source, "activation_function"),
        }).WithTokensAndLabels(j, source);
    }

    void GptJToJson(JsonObject j)
    {
        j["vocab_size"] = VocabSize; j["n_embd"] = HiddenSize; j["n_inner"] = IntermediateSize == 4 * HiddenSize ? null : IntermediateSize;
        j["n_layer"] = NumLayers; j["n_head"] = NumHeads; j["n_positions"] = MaxPositions; j["rotary_dim"] = RotaryDims;
        j["layer_norm_epsilon"] = NormEps; j["activation_function"] = HiddenAct;
    }

    long GptJParameterCount()
    {
        long h = HiddenSize, i = IntermediateSize;
        long layer = 2 * h + 4 * h * h + 2 * h * i + i + h;
        return VocabSize * h + NumLayers * layer + 2 * h + LmHeadParameters;
    }
}
