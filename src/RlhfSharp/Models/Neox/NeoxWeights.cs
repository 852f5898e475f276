using RlhfSharp.Checkpoints;

namespace RlhfSharp.Models.Neox;

/// <summary>
/// GPT-NeoX's HF names (<c>gpt_neox.*</c>, modeling_gpt_neox.py) for <see cref="RotaryBody"/>'s parameters. The fused
/// <c>query_key_value</c> is kept exactly as HF lays it out (per head), so every rule is a rename.
/// </summary>
public static class NeoxWeights
{
    public static IEnumerable<HfWeightMap.Rule> Rules(TransformerConfig c)
    {
        yield return new("model.embed_tokens.weight", ["gpt_neox.embed_in.weight"], false);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string h = $"gpt_neox.layers.{i}.", o = $"model.layers.{i}.";
            foreach (var p in new[] { "weight", "bias" })
            {
                yield return new($"{o}input_norm.{p}", [$"{h}input_layernorm.{p}"], false);
                yield return new($"{o}post_norm.{p}", [$"{h}post_attention_layernorm.{p}"], false);
                if (p == "weight" || c.QkvBias)
                {
                    yield return new($"{o}attn.qkv_proj.{p}", [$"{h}attention.query_key_value.{p}"], false);
                    yield return new($"{o}attn.o_proj.{p}", [$"{h}attention.dense.{p}"], false);
                }
                yield return new($"{o}mlp.up_proj.{p}", [$"{h}mlp.dense_h_to_4h.{p}"], false);
                yield return new($"{o}mlp.down_proj.{p}", [$"{h}mlp.dense_4h_to_h.{p}"], false);
            }
        }
        yield return new("model.norm.weight", ["gpt_neox.final_layer_norm.weight"], false);
        yield return new("model.norm.bias", ["gpt_neox.final_layer_norm.bias"], false);
    }

    /// <summary>Buffers older GPT-NeoX checkpoints (Pythia) carry and HF does not load: the causal mask and its fill value.</summary>
    public static bool IsBuffer(string key) => key.EndsWith(".attention.bias") || key.EndsWith(".attention.masked_bias");
}
