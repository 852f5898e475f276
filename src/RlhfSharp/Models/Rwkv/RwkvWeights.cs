using RlhfSharp.Checkpoints;

namespace RlhfSharp.Models.Rwkv;

/// <summary>
/// RWKV-4's HF names (<c>rwkv.*</c>, modeling_rwkv.py) for <see cref="RwkvModel"/>'s parameters: every rule is a rename.
/// The linear layers are ours <c>*_proj</c>, so LoRA finds them (HF <c>attention.key</c>, <c>feed_forward.value</c>, …).
/// </summary>
public static class RwkvWeights
{
    public static IEnumerable<HfWeightMap.Rule> Rules(TransformerConfig c)
    {
        long h = c.HiddenSize, a = c.AttentionHiddenSize, inner = c.IntermediateSize;
        yield return new("model.embed_tokens.weight", ["rwkv.embeddings.weight"], false);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string hf = $"rwkv.blocks.{i}.", o = $"model.layers.{i}.";
            foreach (var p in new[] { "weight", "bias" })
            {
                if (i == 0) yield return new($"{o}pre_ln.{p}", [$"{hf}pre_ln.{p}"], false);
                yield return new($"{o}ln1.{p}", [$"{hf}ln1.{p}"], false);
                yield return new($"{o}ln2.{p}", [$"{hf}ln2.{p}"], false);
            }
            foreach (var p in new[] { "time_decay", "time_first", "time_mix_key", "time_mix_value", "time_mix_receptance" })
                yield return new($"{o}attn.{p}", [$"{hf}attention.{p}"], false);
            // The output rows of each projection, for LoRA (HfWeightMap.Projections).
            yield return new($"{o}attn.key_proj.weight", [$"{hf}attention.key.weight"], false, [a]);
            yield return new($"{o}attn.value_proj.weight", [$"{hf}attention.value.weight"], false, [a]);
            yield return new($"{o}attn.receptance_proj.weight", [$"{hf}attention.receptance.weight"], false, [a]);
            yield return new($"{o}attn.output_proj.weight", [$"{hf}attention.output.weight"], false, [h]);
            foreach (var p in new[] { "time_mix_key", "time_mix_receptance" })
                yield return new($"{o}ffn.{p}", [$"{hf}feed_forward.{p}"], false);
            yield return new($"{o}ffn.key_proj.weight", [$"{hf}feed_forward.key.weight"], false, [inner]);
            yield return new($"{o}ffn.receptance_proj.weight", [$"{hf}feed_forward.receptance.weight"], false, [h]);
            yield return new($"{o}ffn.value_proj.weight", [$"{hf}feed_forward.value.weight"], false, [h]);
        }
        yield return new("model.norm.weight", ["rwkv.ln_out.weight"], false);
        yield return new("model.norm.bias", ["rwkv.ln_out.bias"], false);
    }
}
