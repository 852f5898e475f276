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
    /// <param name="attentionMask">(B, T) or flattened (B·T), 1 for real tokens; null counts every token.</param>
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
    /// <c>router_aux_loss_coef</c> times the load-balancing loss of the last training forward (training mode, gradients
    /// on) through <paramref name="model"/>'s body, padding left out by that forward's attention mask; null when the config
    /// does not ask for it (<c>output_router_logits</c> false, or a dense model) or no training forward is waiting. The one
    /// place every trained stage adds the router's loss, right after its forward: SFT and the preference family as HF's
    /// <c>MixtralForCausalLM</c>/<c>Qwen2MoeForCausalLM</c> loss and TRL's <c>aux_loss_enabled</c>, RM, the PPO actor
    /// (and its ptx term) and critic as OpenRLHF (<c>ppo_actor.py</c>/<c>ppo_critic.py</c>: <c>loss + aux_loss *
    /// aux_loss_coef</c>), the group-RL family alike. The logits are taken, so a second call without a new forward is null.
    /// The unweighted loss is tallied for the metrics row (<see cref="ExpertLoadLog"/>'s <c>aux_loss</c>).
    /// </summary>
    /// <param name="model">A <see cref="CausalLM"/>, a <see cref="ScoreModel"/> or their body.</param>
    public static Tensor? Weighted(nn.Module model)
    {
        var body = model as DecoderBody ?? model.modules().OfType<DecoderBody>().FirstOrDefault();
        if (body?.Router is not { } record || body.Config.Moe is not { } moe) return null;
        var logits = record.Take();
        if (!moe.OutputRouterLogits || logits is null) return null;
        var aux = Compute(logits, moe.NumExperts, moe.TopK, record.Mask);
        record.AuxSum += aux.item<float>();
        record.AuxCount++;
        return aux * moe.RouterAuxLossCoef;
    }
}
