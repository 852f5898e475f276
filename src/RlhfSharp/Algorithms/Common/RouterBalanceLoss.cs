using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Common;

/// <summary>
/// The router's load-balancing loss of a mixture of experts (Switch Transformer, Fedus et al. 2021, eq. 4–6), as
/// transformers v4.44 computes it (<c>load_balancing_loss_func</c>, modeling_mixtral.py, also used by Qwen2-MoE):
/// E · Σ_e (fraction of (token, slot) picks that went to e) · (mean router probability of e), over every sparse
/// layer's tokens together, padding left out when a mask is given. HF adds <c>router_aux_loss_coef</c> times it to
/// the language-model loss only when <c>output_router_logits</c> is set.
/// </summary>
public static class RouterBalanceLoss
{
    /// <param name="gateLogits">Each sparse layer's router logits (B·T, E), in layer order.</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens; null counts every token.</param>
    public static Tensor Compute(IReadOnlyList<Tensor> gateLogits, int numExperts, int topK, Tensor? attentionMask)
    {
        var logits = cat(gateLogits.ToArray(), 0);                        // (L·B·T, E)
        var probs = logits.softmax(-1);
        var chosen = probs.topk(topK, -1).indexes;
        var picks = nn.functional.one_hot(chosen, numExperts).to(ScalarType.Float32); // (N, k, E); HF: expert_mask.float()
        Tensor tokensPerExpert, probPerExpert;
        if (attentionMask is null)
        {
            tokensPerExpert = picks.mean([0]);
            probPerExpert = probs.mean([0]);
        }
        else
        {
            long layers = logits.shape[0] / attentionMask.numel();
            var m = attentionMask.reshape(1, -1).expand(layers, -1).reshape(-1, 1); // (N, 1), layer-major as the logits
            var m32 = m.to(ScalarType.Float32);
            tokensPerExpert = (picks * m32.unsqueeze(-1)).sum([0L]) / m32.sum();
            var mp = m.to(probs.dtype);
            probPerExpert = (probs * mp).sum([0L]) / mp.sum();
        }
        return (tokensPerExpert * probPerExpert.unsqueeze(0)).sum() * numExperts;
    }

    /// <summary>
    /// <c>router_aux_loss_coef</c> times the loss of the router logits <paramref name="model"/>'s last forward in training
    /// mode recorded, or null when the config does not ask for it (<c>output_router_logits</c> false, or no experts).
    /// </summary>
    public static Tensor? Weighted(CausalLM model, Tensor? attentionMask)
    {
        if (model.Config.Moe is not { OutputRouterLogits: true } moe) return null;
        var logits = model.model.modules().OfType<SparseMoe>().Select(s => s.LastRouterLogits).ToList();
        if (logits.Count == 0 || logits.Any(l => l is null)) return null;
        return Compute(logits!, moe.NumExperts, moe.TopK, attentionMask) * moe.RouterAuxLossCoef;
    }

    /// <summary>
    /// The expert load of the last forward of every mixture-of-experts module in <paramref name="module"/>, into a metrics
    /// row: the largest and smallest share of (token, slot) picks any expert got, over all sparse layers (1/E each when
    /// balanced; a collapsed router shows as max → 1, min → 0).
    /// </summary>
    public static void LogLoad(nn.Module module, Dictionary<string, double> row)
    {
        double max = 0, min = 1;
        bool any = false;
        foreach (var moe in module.modules().OfType<SparseMoe>())
        {
            long total = moe.LastLoad.Sum();
            if (total == 0) continue;
            any = true;
            max = Math.Max(max, moe.LastLoad.Max() / (double)total);
            min = Math.Min(min, moe.LastLoad.Min() / (double)total);
        }
        if (!any) return;
        row["expert_load_max"] = max;
        row["expert_load_min"] = min;
    }
}
