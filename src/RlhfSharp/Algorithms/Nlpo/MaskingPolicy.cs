using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Nlpo;

/// <summary>
/// NLPO's masking policy (Ramamurthy et al. 2022, Algorithm 1): a frozen copy of the actor whose top-p set
/// (<see cref="TopPMask"/>) is the action space of every rollout step, refreshed from the actor every
/// <see cref="NlpoConfig.TargetUpdateIterations"/> rollout batches. As RL4LMs' <c>NLPO.learn</c> does
/// (allenai/RL4LMs@97df0bd <c>rl4lms/algorithms/nlpo/nlpo.py</c>: after <c>collect_rollouts</c>, when
/// <c>iteration % target_update_iterations == 0</c>, <c>update_mask_model()</c> deep-copies the policy, then
/// <c>train()</c>), the copy is taken after the rollouts of batch k·T and before its update, so it serves from batch
/// k·T + 1 on; the masks of a batch are those it was sampled with (RL4LMs keeps them in the rollout buffer).
/// </summary>
public sealed class MaskingPolicy(CausalLM policy, NlpoConfig config, IReadOnlyList<int> alwaysAllowed)
    : MaskingCopy<CausalLM>(policy, policy.Clone(config.MaskScalarType(policy.parameters().First().dtype)), config, alwaysAllowed)
{
    public override IRecordedTokenMask NewRollout() => new Rollout(this);

    /// <summary>The allowed set after each token of a sequence, (B, N, V) for its N positions from <paramref name="start"/>.</summary>
    /// <remarks>The full-sequence form of what a <see cref="NewRollout"/> records step by step (tests compare the two).</remarks>
    public Tensor Allowed(Tensor sequences, Tensor attentionMask, int start, int count)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = Model.Forward(sequences, attentionMask, Transformer.PositionsFromMask(attentionMask)).narrow(1, start, count);
        return Rule.Allowed(logits).MoveToOuterDisposeScope();
    }

    /// <summary>One generation: the masking policy runs beside the sampler on its own KV cache.</summary>
    sealed class Rollout(MaskingPolicy owner) : TopPRollout(owner.Rule)
    {
        KvCache? cache;

        public override void Begin(Tensor promptIds, Tensor promptMask, int maxNewTokens)
        {
            var m = owner.Model;
            var weight = m.model.Embeddings.weight!;
            cache = new KvCache(m.Config, promptIds.shape[0], (int)promptIds.shape[1] + maxNewTokens, weight.dtype, weight.device);
            using var scope = NewDisposeScope();
            SetLogits(m.Forward(promptIds, promptMask, Transformer.PositionsFromMask(promptMask), cache, lastOnly: true)
                .squeeze(1).to(ScalarType.Float32).DetachFromDisposeScope());
        }

        public override void Advance(Tensor next, Tensor attentionMask, Tensor positions)
        {
            using var scope = NewDisposeScope();
            SetLogits(owner.Model.Forward(next, attentionMask, positions, cache, lastOnly: true).squeeze(1).to(ScalarType.Float32).DetachFromDisposeScope());
        }

        protected override void DisposeState() => cache?.Dispose();
    }
}
