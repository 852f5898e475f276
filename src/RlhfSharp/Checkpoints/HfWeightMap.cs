using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// The correspondence between HF parameter names and ours. We fuse q/k/v into one projection and LLaMA's
/// gate/up into one (fewer ops per token); GPT-2 keeps its weights in Conv1D layout [in, out], so those are
/// transposed on the way in and out. Everything else is a rename. Both directions are exact (cat/split/
/// transpose), so save → load is bit-identical.
/// </summary>
public static class HfWeightMap
{
    /// <summary>
    /// One of our parameters and the HF tensors it is stacked from (along dim 0, after transposing Conv1D), with each
    /// one's number of rows when there are several (null: one tensor, the whole parameter).
    /// </summary>
    public sealed record Rule(string Ours, string[] Hf, bool Conv1D, long[]? Rows = null);

    /// <summary>The body's rules of each family; a new family adds its line here and its rules in a file of its own.</summary>
    static IEnumerable<Rule> BodyRules(TransformerConfig c) => c.Family switch
    {
        ModelFamily.Gpt2 => Gpt2Rules(c),
        ModelFamily.Llama when VariantWeightRules.Applies(c) => VariantWeightRules.Rules(c),
        ModelFamily.Llama => LlamaRules(c),
        ModelFamily.Neox => Models.Neox.NeoxWeights.Rules(c),
        ModelFamily.Opt => Models.Opt.OptWeights.Rules(c),
        ModelFamily.GptJ => Models.GptJ.GptJWeights.Rules(c),
        ModelFamily.Bloom => Models.Bloom.BloomWeights.Rules(c),
        ModelFamily.Rwkv => Models.Rwkv.RwkvWeights.Rules(c),
        _ => throw new RlhfException($"model_type {c.ModelType}: no weight map for family {c.Family}."),
    };

    static IEnumerable<Rule> Gpt2Rules(TransformerConfig c)
    {
        yield return new("model.embed_tokens.weight", ["transformer.wte.weight"], false);
        yield return new("model.embed_positions.weight", ["transformer.wpe.weight"], false);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string h = $"transformer.h.{i}.", o = $"model.layers.{i}.";
            foreach (var p in new[] { "weight", "bias" })
            {
                yield return new($"{o}input_norm.{p}", [$"{h}ln_1.{p}"], false);
                yield return new($"{o}attn.qkv_proj.{p}", [$"{h}attn.c_attn.{p}"], p == "weight");
                yield return new($"{o}attn.o_proj.{p}", [$"{h}attn.c_proj.{p}"], p == "weight");
                yield return new($"{o}post_norm.{p}", [$"{h}ln_2.{p}"], false);
                yield return new($"{o}mlp.up_proj.{p}", [$"{h}mlp.c_fc.{p}"], p == "weight");
                yield return new($"{o}mlp.down_proj.{p}", [$"{h}mlp.c_proj.{p}"], p == "weight");
            }
        }
        yield return new("model.norm.weight", ["transformer.ln_f.weight"], false);
        yield return new("model.norm.bias", ["transformer.ln_f.bias"], false);
    }

    static IEnumerable<Rule> LlamaRules(TransformerConfig c)
    {
        long[] qkvRows = [c.NumHeads * c.HeadDim, c.NumKvHeads * c.HeadDim, c.NumKvHeads * c.HeadDim], gateUpRows = [c.IntermediateSize, c.IntermediateSize];
        yield return new("model.embed_tokens.weight", ["model.embed_tokens.weight"], false);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string h = $"model.layers.{i}.", o = $"model.layers.{i}.";
            yield return new($"{o}input_norm.weight", [$"{h}input_layernorm.weight"], false);
            yield return new($"{o}attn.qkv_proj.weight", [$"{h}self_attn.q_proj.weight", $"{h}self_attn.k_proj.weight", $"{h}self_attn.v_proj.weight"], false, qkvRows);
            if (c.QkvBias)
                yield return new($"{o}attn.qkv_proj.bias", [$"{h}self_attn.q_proj.bias", $"{h}self_attn.k_proj.bias", $"{h}self_attn.v_proj.bias"], false, qkvRows);
            yield return new($"{o}attn.o_proj.weight", [$"{h}self_attn.o_proj.weight"], false);
            if (c.OutputBias) yield return new($"{o}attn.o_proj.bias", [$"{h}self_attn.o_proj.bias"], false);
            yield return new($"{o}post_norm.weight", [$"{h}post_attention_layernorm.weight"], false);
            yield return new($"{o}mlp.up_proj.weight", [$"{h}mlp.gate_proj.weight", $"{h}mlp.up_proj.weight"], false, gateUpRows);
            if (c.MlpBias) yield return new($"{o}mlp.up_proj.bias", [$"{h}mlp.gate_proj.bias", $"{h}mlp.up_proj.bias"], false, gateUpRows);
            yield return new($"{o}mlp.down_proj.weight", [$"{h}mlp.down_proj.weight"], false);
            if (c.MlpBias) yield return new($"{o}mlp.down_proj.bias", [$"{h}mlp.down_proj.bias"], false);
        }
        yield return new("model.norm.weight", ["model.norm.weight"], false);
    }

    static IEnumerable<Rule> Rules(TransformerConfig c, bool scoreHead)
    {
        foreach (var r in BodyRules(c)) yield return r;
        if (scoreHead) yield return new("score.weight", ["score.weight"], false);
        else if (!c.TieWordEmbeddings) yield return new("lm_head.weight", [c.HfLmHead + ".weight"], false);
        if (!scoreHead && c.LmHeadBias) yield return new("lm_head.bias", [c.HfLmHead + ".bias"], false);
    }

    /// <summary>
    /// Our state dict from HF tensors. Missing keys and shape mismatches are errors naming the key.
    /// Keys HF also ignores (a tied <c>lm_head.weight</c>, rotary/causal buffers) are skipped; other extra
    /// keys are an error, since they mean the checkpoint is not the architecture its config says.
    /// </summary>
    /// <param name="allowMissingHead">Load the body only when the head is absent (a reward model started from an LM).</param>
    public static Dictionary<string, Tensor> ToOurs(TransformerConfig c, IReadOnlyDictionary<string, Tensor> hf, bool scoreHead,
        string source, Func<string, long[]> expectedShape, bool allowMissingHead = false)
    {
        var ours = new Dictionary<string, Tensor>();
        var used = new HashSet<string>();
        foreach (var rule in Rules(c, scoreHead))
        {
            var parts = new List<Tensor>();
            foreach (var key in rule.Hf)
            {
                if (!hf.TryGetValue(key, out var t))
                {
                    if (allowMissingHead && rule.Ours is "score.weight" or "lm_head.weight") goto nextRule;
                    throw new RlhfException($"{source}: missing weight '{key}' (model_type {c.ModelType}, {c.NumLayers} layers).");
                }
                used.Add(key);
                parts.Add(rule.Conv1D ? t.t() : t);
            }
            var joined = parts.Count == 1 ? parts[0] : cat(parts, 0);
            var want = expectedShape(rule.Ours);
            if (!joined.shape.SequenceEqual(want))
                throw new RlhfException($"{source}: weight '{string.Join("+", rule.Hf)}' has shape [{string.Join(", ", parts.Select(p => string.Join("x", rule.Conv1D ? p.t().shape : p.shape)))}], " +
                                        $"but config.json implies {(rule.Conv1D ? "[" + string.Join("x", want.Reverse()) + "]" : "[" + string.Join("x", want) + "]")}.");
            ours[rule.Ours] = joined;
        nextRule:;
        }
        var unexpected = hf.Keys.Where(k => !used.Contains(k) && !Ignorable(k, c)).ToList();
        if (unexpected.Count > 0)
            throw new RlhfException($"{source}: unexpected weights {string.Join(", ", unexpected.Take(5).Select(k => $"'{k}'"))}{(unexpected.Count > 5 ? $" and {unexpected.Count - 5} more" : "")} for model_type {c.ModelType}.");
        return ours;
    }

    /// <summary>
    /// Where one HF tensor goes: rows [<paramref name="RowOffset"/>, +<paramref name="Rows"/>) of our parameter
    /// <paramref name="Ours"/> (<paramref name="Rows"/> 0: all of it), transposed for GPT-2's Conv1D.
    /// </summary>
    public sealed record Placement(string Ours, long RowOffset, long Rows, bool Conv1D);

    /// <summary>
    /// Every HF key of the architecture and where it lands in our parameters: the fused q/k/v and gate/up
    /// projections are filled slice by slice (row offsets), so loading never builds a joined copy.
    /// </summary>
    public static Dictionary<string, Placement> Placements(TransformerConfig c, bool scoreHead)
    {
        var result = new Dictionary<string, Placement>();
        foreach (var rule in Rules(c, scoreHead))
        {
            long[] sizes = rule.Rows ?? [0];
            long offset = 0;
            for (int i = 0; i < rule.Hf.Length; i++)
            {
                result[rule.Hf[i]] = new Placement(rule.Ours, offset, sizes[i], rule.Conv1D);
                offset += sizes[i];
            }
        }
        return result;
    }

    /// <summary>HF's <c>base_model_prefix</c> of each family: the module the body's keys sit under in a <c>*ForCausalLM</c> file.</summary>
    public static string BasePrefix(TransformerConfig c) => c.Family switch
    {
        ModelFamily.Gpt2 or ModelFamily.GptJ or ModelFamily.Bloom => "transformer",
        ModelFamily.Neox => "gpt_neox",
        ModelFamily.Rwkv => "rwkv",
        _ => "model", // LLaMA and its variants, OPT
    };

    /// <summary>
    /// The file's keys as the architecture names them. A checkpoint saved from the bare body (HF's <c>*Model</c>: old
    /// facebook/opt-* files hold <c>decoder.*</c>, not <c>model.decoder.*</c>) has no key under the base prefix; HF's
    /// <c>from_pretrained</c> then matches its keys against the expected ones with the prefix removed
    /// (modeling_utils.py <c>_load_pretrained_model</c>, <c>remove_prefix_from_model</c>). So does this: such a file's
    /// keys get the prefix wherever that names an expected weight. Files with the prefix are returned unchanged.
    /// </summary>
    public static Dictionary<string, string> WithBasePrefix(TransformerConfig c, IEnumerable<string> fileKeys, ICollection<string> expected)
    {
        string prefix = BasePrefix(c);
        var keys = fileKeys.ToList();
        bool bare = !keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal)) && expected.Any(k => k.StartsWith(prefix + ".", StringComparison.Ordinal));
        return keys.ToDictionary(k => bare && expected.Contains(prefix + "." + k) ? prefix + "." + k : k, k => k);
    }

    /// <summary>True for HF keys the loader skips (buffers HF does not load either, a head the model does not have).</summary>
    public static bool IsIgnorable(string key, TransformerConfig c) => Ignorable(key, c);

    static bool Ignorable(string key, TransformerConfig c) =>
        key.EndsWith(".attn.bias") || key.EndsWith(".attn.masked_bias") || key.EndsWith("rotary_emb.inv_freq")
        || (key == "lm_head.weight" && c.TieWordEmbeddings) || key == "score.weight" || key == "lm_head.weight"
        || (key == "lm_head.bias" && c.LmHeadBias) || (c.Family == ModelFamily.Neox && (key == "embed_out.weight" || Models.Neox.NeoxWeights.IsBuffer(key)))
        || (c.Family == ModelFamily.Rwkv && key == "head.weight"); // RWKV's LM head, when a score model loads an LM folder

    /// <summary>
    /// One of our projection matrices (<c>model.layers.{i}.attn.qkv_proj</c>, …) and the HF modules it is stacked
    /// from along the output axis, with each one's number of output rows: q/k/v for LLaMA's fused attention input,
    /// gate/up for its fused MLP input, a single module everywhere else (GPT-2's c_attn is fused in HF too).
    /// </summary>
    public sealed record Projection(string Ours, string[] HfModules, long[] Rows);

    /// <summary>Every projection of the body, layer by layer, in HF module names (no <c>.weight</c>).</summary>
    public static IEnumerable<Projection> Projections(TransformerConfig c)
    {
        foreach (var rule in BodyRules(c))
        {
            if (!rule.Ours.EndsWith("_proj.weight")) continue;
            long[] rows = rule.Rows ?? [OutputRows(c, rule.Ours)];
            yield return new(rule.Ours[..^".weight".Length], rule.Hf.Select(h => h[..^".weight".Length]).ToArray(), rows);
        }
    }

    static long OutputRows(TransformerConfig c, string ours) =>
        ours.EndsWith("qkv_proj.weight") ? (c.NumHeads + 2L * c.NumKvHeads) * c.HeadDim
        : ours.EndsWith("up_proj.weight") ? (c.Family == ModelFamily.Llama ? 2L : 1L) * c.IntermediateSize
        : c.HiddenSize; // o_proj, down_proj

    /// <summary>HF tensors (HF names, HF layouts) from our state dict, in HF's order; tied heads omitted as HF does.</summary>
    public static List<KeyValuePair<string, Tensor>> ToHf(TransformerConfig c, IReadOnlyDictionary<string, Tensor> ours, bool scoreHead)
    {
        var result = new List<KeyValuePair<string, Tensor>>();
        foreach (var rule in Rules(c, scoreHead))
        {
            var t = ours[rule.Ours];
            if (rule.Hf.Length == 1)
            {
                result.Add(new(rule.Hf[0], rule.Conv1D ? t.t() : t)); // a view: the writer copies it row chunk by row chunk
                continue;
            }
            var pieces = t.split(rule.Rows!, 0);
            for (int i = 0; i < rule.Hf.Length; i++) result.Add(new(rule.Hf[i], pieces[i]));
        }
        return result.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
    }
}
