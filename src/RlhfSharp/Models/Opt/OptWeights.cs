using RlhfSharp.Checkpoints;

namespace RlhfSharp.Models.Opt;

/// <summary>
/// OPT's HF names (<c>model.decoder.*</c>, modeling_opt.py) for <see cref="OptModel"/>'s parameters; q/k/v are stacked
/// into one projection as blocks.
/// </summary>
public static class OptWeights
{
    public static IEnumerable<HfWeightMap.Rule> Rules(TransformerConfig c)
    {
        const string d = "model.decoder.";
        long width = (long)c.NumHeads * c.HeadDim;
        long[] qkvRows = [width, width, width];
        yield return new("model.embed_tokens.weight", [$"{d}embed_tokens.weight"], false);
        yield return new("model.embed_positions.weight", [$"{d}embed_positions.weight"], false);
        if (c.WordEmbedProjDim is not null)
        {
            yield return new("model.project_in.weight", [$"{d}project_in.weight"], false);
            yield return new("model.project_out.weight", [$"{d}project_out.weight"], false);
        }
        for (int i = 0; i < c.NumLayers; i++)
        {
            string h = $"{d}layers.{i}.", o = $"model.layers.{i}.";
            foreach (var p in new[] { "weight", "bias" })
            {
                yield return new($"{o}input_norm.{p}", [$"{h}self_attn_layer_norm.{p}"], false);
                yield return new($"{o}post_norm.{p}", [$"{h}final_layer_norm.{p}"], false);
                if (p == "bias" && !c.QkvBias) continue; // enable_bias false: no projection biases, LayerNorm biases stay
                yield return new($"{o}attn.qkv_proj.{p}", [$"{h}self_attn.q_proj.{p}", $"{h}self_attn.k_proj.{p}", $"{h}self_attn.v_proj.{p}"], false, qkvRows);
                yield return new($"{o}attn.o_proj.{p}", [$"{h}self_attn.out_proj.{p}"], false);
                yield return new($"{o}mlp.up_proj.{p}", [$"{h}fc1.{p}"], false);
                yield return new($"{o}mlp.down_proj.{p}", [$"{h}fc2.{p}"], false);
            }
        }
        if (c.OptFinalNorm)
        {
            yield return new("model.norm.weight", [$"{d}final_layer_norm.weight"], false);
            yield return new("model.norm.bias", [$"{d}final_layer_norm.bias"], false);
        }
    }
}
