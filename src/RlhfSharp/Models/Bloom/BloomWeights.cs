using RlhfSharp.Checkpoints;

namespace RlhfSharp.Models.Bloom;

/// <summary>
/// BLOOM's HF names (<c>transformer.*</c>, modeling_bloom.py) for <see cref="BloomModel"/>'s parameters; the fused
/// <c>query_key_value</c> keeps HF's per-head layout, so every rule is a rename.
/// </summary>
public static class BloomWeights
{
    public static IEnumerable<HfWeightMap.Rule> Rules(TransformerConfig c)
    {
        yield return new("model.embed_tokens.weight", ["transformer.word_embeddings.weight"], false);
        yield return new("model.embed_norm.weight", ["transformer.word_embeddings_layernorm.weight"], false);
        yield return new("model.embed_norm.bias", ["transformer.word_embeddings_layernorm.bias"], false);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string h = $"transformer.h.{i}.", o = $"model.layers.{i}.";
            foreach (var p in new[] { "weight", "bias" })
            {
                yield return new($"{o}input_norm.{p}", [$"{h}input_layernorm.{p}"], false);
                yield return new($"{o}attn.qkv_proj.{p}", [$"{h}self_attention.query_key_value.{p}"], false);
                yield return new($"{o}attn.o_proj.{p}", [$"{h}self_attention.dense.{p}"], false);
                yield return new($"{o}post_norm.{p}", [$"{h}post_attention_layernorm.{p}"], false);
                yield return new($"{o}mlp.up_proj.{p}", [$"{h}mlp.dense_h_to_4h.{p}"], false);
                yield return new($"{o}mlp.down_proj.{p}", [$"{h}mlp.dense_4h_to_h.{p}"], false);
            }
        }
        yield return new("model.norm.weight", ["transformer.ln_f.weight"], false);
        yield return new("model.norm.bias", ["transformer.ln_f.bias"], false);
    }
}
