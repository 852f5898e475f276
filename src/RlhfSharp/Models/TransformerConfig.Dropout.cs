using System.Text.Json.Nodes;

namespace RlhfSharp.Models;

// Dropout keys of each family's config.json and where transformers v4.44's modeling_*.py applies them (docs/MODELS.md):
//   gpt2     embd_pdrop (0.1): GPT2Model.drop on wte + wpe; attn_pdrop (0.1): GPT2Attention.attn_dropout on the probabilities;
//            resid_pdrop (0.1): GPT2Attention.resid_dropout after c_proj and GPT2MLP.dropout after its c_proj.
//   opt      attention_dropout (0.0): OPTAttention on the probabilities; dropout (0.1): OPTDecoderLayer after out_proj and
//            after fc2; activation_dropout (0.0): read by OPTConfig, applied nowhere; layerdrop (0.0): OPTDecoder skips
//            each layer in training with that probability.
//   gpt_neox attention_dropout (0.0): GPTNeoXAttention.attention_dropout; hidden_dropout (0.0): GPTNeoXModel.emb_dropout,
//            GPTNeoXLayer.post_attention_dropout and post_mlp_dropout.
//   gptj     embd_pdrop (0.0): GPTJModel.drop; attn_pdrop (0.0): GPTJAttention.attn_dropout; resid_pdrop (0.0):
//            GPTJAttention.resid_dropout after out_proj and GPTJMLP.dropout after fc_out.
//   bloom    attention_dropout (0.0): BloomAttention.attention_dropout; hidden_dropout (0.0): dropout_add after the
//            attention's dense and after dense_4h_to_h (no embedding dropout).
//   llama, mistral, qwen2, gemma, gemma2, mixtral, qwen2_moe: attention_dropout (0.0) on the probabilities only.
//   phi3     attention_dropout (0.0); resid_pdrop (0.0): Phi3DecoderLayer.resid_attn_dropout and resid_mlp_dropout;
//            embd_pdrop (0.0): Phi3Model.embed_dropout is built but never called in forward.
//   rwkv     none.
public sealed partial record TransformerConfig
{
    /// <summary>The dropout probabilities by site (<see cref="Models.Dropouts"/>); none unless config.json sets them.</summary>
    public Dropouts Dropout { get; init; } = Dropouts.None;

    static TransformerConfig WithDropout(TransformerConfig c, JsonObject j, string source)
    {
        double P(string key, double fallback) => Dropouts.Checked(Dbl(j, key, source) ?? fallback, source, key);
        var d = c.ModelType switch
        {
            "gpt2" => new Dropouts { Embedding = P("embd_pdrop", 0.1), Attention = P("attn_pdrop", 0.1), Residual = P("resid_pdrop", 0.1) },
            "gptj" => new Dropouts { Embedding = P("embd_pdrop", 0.0), Attention = P("attn_pdrop", 0.0), Residual = P("resid_pdrop", 0.0) },
            "opt" => new Dropouts { Attention = P("attention_dropout", 0.0), Residual = P("dropout", 0.1), Inert = P("activation_dropout", 0.0), Layer = P("layerdrop", 0.0) },
            "gpt_neox" => new Dropouts { Attention = P("attention_dropout", 0.0), Embedding = P("hidden_dropout", 0.0), Residual = P("hidden_dropout", 0.0) },
            "bloom" => new Dropouts { Attention = P("attention_dropout", 0.0), Residual = P("hidden_dropout", 0.0) },
            "phi3" => new Dropouts { Attention = P("attention_dropout", 0.0), Residual = P("resid_pdrop", 0.0), Inert = P("embd_pdrop", 0.0) },
            "rwkv" => Dropouts.None,
            _ => new Dropouts { Attention = P("attention_dropout", 0.0) },
        };
        return c with { Dropout = d };
    }

    /// <summary>Writes the family's dropout keys as they were read (<see cref="WithDropout"/>).</summary>
    void DropoutJson(JsonObject j)
    {
        var d = Dropout;
        switch (ModelType)
        {
            case "gpt2" or "gptj": j["embd_pdrop"] = d.Embedding; j["attn_pdrop"] = d.Attention; j["resid_pdrop"] = d.Residual; break;
            case "opt": j["dropout"] = d.Residual; j["attention_dropout"] = d.Attention; j["activation_dropout"] = d.Inert; j["layerdrop"] = d.Layer; break;
            case "gpt_neox" or "bloom": j["attention_dropout"] = d.Attention; j["hidden_dropout"] = d.Residual; break;
            case "phi3": j["attention_dropout"] = d.Attention; j["resid_pdrop"] = d.Residual; j["embd_pdrop"] = d.Inert; break;
            case "rwkv": break;
            default: j["attention_dropout"] = d.Attention; break;
        }
    }
}
