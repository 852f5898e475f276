using RlhfSharp.Models;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// HF parameter names of the LLaMA variants whose keys are not LLaMA's (Gemma uses LLaMA's names): Phi-3's fused
/// <c>qkv_proj</c> and <c>gate_up_proj</c> (already our layout: rows q|k|v and gate|up, so a rename), Gemma 2's four norms,
/// and the experts of Mixtral (<c>block_sparse_moe.experts.{e}.w1|w2|w3</c>, w1 the gate and w3 the up projection) and
/// Qwen2-MoE (<c>mlp.experts.{e}.gate_proj|up_proj|down_proj</c>, a shared expert and its gate). Key names as in
/// transformers v4.44 modeling_phi3.py, modeling_gemma2.py, modeling_mixtral.py, modeling_qwen2_moe.py.
/// </summary>
public static class VariantWeightRules
{
    /// <summary>True when <paramref name="c"/> has keys LLaMA's map does not cover.</summary>
    public static bool Applies(TransformerConfig c) => c.HfFusedProjections || c.SandwichNorms || c.Moe is not null;

    public static IEnumerable<HfWeightMap.Rule> Rules(TransformerConfig c)
    {
        long[] qkvRows = [c.NumHeads * c.HeadDim, c.NumKvHeads * c.HeadDim, c.NumKvHeads * c.HeadDim];
        yield return new("model.embed_tokens.weight", ["model.embed_tokens.weight"], false);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string h = $"model.layers.{i}.", o = $"model.layers.{i}.";
            yield return new($"{o}input_norm.weight", [$"{h}input_layernorm.weight"], false);
            if (c.HfFusedProjections) yield return new($"{o}attn.qkv_proj.weight", [$"{h}self_attn.qkv_proj.weight"], false);
            else
            {
                yield return new($"{o}attn.qkv_proj.weight", [$"{h}self_attn.q_proj.weight", $"{h}self_attn.k_proj.weight", $"{h}self_attn.v_proj.weight"], false, qkvRows);
                if (c.QkvBias)
                    yield return new($"{o}attn.qkv_proj.bias", [$"{h}self_attn.q_proj.bias", $"{h}self_attn.k_proj.bias", $"{h}self_attn.v_proj.bias"], false, qkvRows);
            }
            yield return new($"{o}attn.o_proj.weight", [$"{h}self_attn.o_proj.weight"], false);
            if (c.OutputBias) yield return new($"{o}attn.o_proj.bias", [$"{h}self_attn.o_proj.bias"], false);
            if (c.SandwichNorms)
            {
                yield return new($"{o}attn_out_norm.weight", [$"{h}post_attention_layernorm.weight"], false);
                yield return new($"{o}post_norm.weight", [$"{h}pre_feedforward_layernorm.weight"], false);
                yield return new($"{o}mlp_out_norm.weight", [$"{h}post_feedforward_layernorm.weight"], false);
            }
            else yield return new($"{o}post_norm.weight", [$"{h}post_attention_layernorm.weight"], false);

            if (c.SparseLayer(i))
            {
                var moe = c.Moe!;
                bool mixtral = c.ModelType == "mixtral";
                string m = mixtral ? $"{h}block_sparse_moe." : $"{h}mlp.";
                long[] expertRows = [moe.ExpertSize, moe.ExpertSize];
                yield return new($"{o}mlp.gate.weight", [$"{m}gate.weight"], false);
                for (int e = 0; e < moe.NumExperts; e++)
                {
                    string x = $"{m}experts.{e}.";
                    yield return new($"{o}mlp.experts.{e}.up_proj.weight", mixtral ? [$"{x}w1.weight", $"{x}w3.weight"] : [$"{x}gate_proj.weight", $"{x}up_proj.weight"], false, expertRows);
                    yield return new($"{o}mlp.experts.{e}.down_proj.weight", [mixtral ? $"{x}w2.weight" : $"{x}down_proj.weight"], false);
                }
                if (moe.SharedExpertSize is int shared)
                {
                    yield return new($"{o}mlp.shared_expert.up_proj.weight", [$"{m}shared_expert.gate_proj.weight", $"{m}shared_expert.up_proj.weight"], false, [shared, shared]);
                    yield return new($"{o}mlp.shared_expert.down_proj.weight", [$"{m}shared_expert.down_proj.weight"], false);
                    yield return new($"{o}mlp.shared_expert_gate.weight", [$"{m}shared_expert_gate.weight"], false);
                }
            }
            else if (c.HfFusedProjections)
            {
                yield return new($"{o}mlp.up_proj.weight", [$"{h}mlp.gate_up_proj.weight"], false);
                yield return new($"{o}mlp.down_proj.weight", [$"{h}mlp.down_proj.weight"], false);
            }
            else
            {
                long[] gateUpRows = [c.IntermediateSize, c.IntermediateSize];
                yield return new($"{o}mlp.up_proj.weight", [$"{h}mlp.gate_proj.weight", $"{h}mlp.up_proj.weight"], false, gateUpRows);
                if (c.MlpBias) yield return new($"{o}mlp.up_proj.bias", [$"{h}mlp.gate_proj.bias", $"{h}mlp.up_proj.bias"], false, gateUpRows);
                yield return new($"{o}mlp.down_proj.weight", [$"{h}mlp.down_proj.weight"], false);
                if (c.MlpBias) yield return new($"{o}mlp.down_proj.bias", [$"{h}mlp.down_proj.bias"], false);
            }
        }
        yield return new("model.norm.weight", ["model.norm.weight"], false);
    }
}
