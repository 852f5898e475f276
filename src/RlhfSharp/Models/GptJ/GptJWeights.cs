using RlhfSharp.Checkpoints;

namespace RlhfSharp.Models.GptJ;

/// <summary>
/// GPT-J's HF names (<c>transformer.*</c>, modeling_gptj.py) for <see cref="RotaryBody"/>'s parameters; the separate,
/// bias-free q/k/v are stacked into one projection as blocks.
/// </summary>
public static class GptJWeights
{
    public static IEnumerable<HfWeightMap.Rule> Rules(TransformerConfig c)
    {
        long width = (long)c.NumHeads * c.HeadDim;
        yield return new("model.embed_tokens.weight", ["transformer.wte.weight"], false);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string h = $"transformer.h.{i}.", o = $"model.layers.{i}.";
            yield return new($"{o}input_norm.weight", [$"{h}ln_1.weight"], false);
            yield return new($"{o}input_norm.bias", [$"{h}ln_1.bias"], false);
            yield return new($"{o}attn.qkv_proj.weight", [$"{h}attn.q_proj.weight", $"{h}attn.k_proj.weight", $"{h}attn.v_proj.weight"], false, [width, width, width]);
            yield return new($"{o}attn.o_proj.weight", [$"{h}attn.out_proj.weight"], false);
            foreach (var p in new[] { "weight", "bias" })
            {
                yield return new($"{o}mlp.up_proj.{p}", [$"{h}mlp.fc_in.{p}"], false);
                yield return new($"{o}mlp.down_proj.{p}", [$"{h}mlp.fc_out.{p}"], false);
            }
        }
        yield return new("model.norm.weight", ["transformer.ln_f.weight"], false);
        yield return new("model.norm.bias", ["transformer.ln_f.bias"], false);
    }
}
