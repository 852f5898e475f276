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
public sealed class MaskingPolicy : IActionSpaceMask, IDisposable
{
    readonly CausalLM policy;
    readonly CausalLM model;
    readonly NlpoConfig config;
    readonly IReadOnlyList<int> alwaysAllowed;

    /// <param name="policy">The actor; copied now and at each refresh.</param>
    /// <param name="alwaysAllowed">Token ids never masked (RL4LMs: the tokenizer's all_special_ids, <c>ITokenizer.SpecialIds</c>).</param>
    public MaskingPolicy(CausalLM policy, NlpoConfig config, IReadOnlyList<int> alwaysAllowed)
    {
        this.policy = policy; this.config = config; this.alwaysAllowed = alwaysAllowed;
        model = policy.Clone(config.MaskScalarType(policy.parameters().First().dtype));
        model.eval();
        foreach (var p in model.parameters()) p.requires_grad = false;
    }

    /// <summary>The masking policy's weights: saved with the stage's state, so a resumed run masks as the uninterrupted one.</summary>
    public IReadOnlyDictionary<string, nn.Module> Modules => new Dictionary<string, nn.Module> { ["mask_policy"] = model };

    /// <summary>How many times the copy was refreshed in this process.</summary>
    public int Refreshes { get; private set; }

    public IRecordedTokenMask NewRollout() => new Rollout(this);

    public void AfterRollout(int step)
    {
        if ((step + 1) % config.TargetUpdateIterations != 0) return;
        using var _ = no_grad();
        var current = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in model.named_parameters()) p.copy_(current[name]);
        Refreshes++;
    }

    /// <summary>The allowed set after each token of a sequence, (B, N, V) for its N positions from <paramref name="start"/>.</summary>
    /// <remarks>The full-sequence form of what a <see cref="NewRollout"/> records step by step (tests compare the two).</remarks>
    public Tensor Allowed(Tensor sequences, Tensor attentionMask, int start, int count)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = model.Forward(sequences, attentionMask, Transformer.PositionsFromMask(attentionMask)).narrow(1, start, count);
        return TopPMask.Allowed(logits, config.TopMask, config.MinTokensToKeep, alwaysAllowed).MoveToOuterDisposeScope();
    }

    public void Dispose() => model.Dispose();

    /// <summary>One generation: the masking policy runs beside the sampler on its own KV cache.</summary>
    sealed class Rollout(MaskingPolicy owner) : IRecordedTokenMask
    {
        KvCache? cache;
        Tensor? logits;
        readonly List<Tensor> steps = [];

        public void Begin(Tensor promptIds, Tensor promptMask, int maxNewTokens)
        {
            var m = owner.model;
            var weight = m.model.Embeddings.weight!;
            cache = new KvCache(m.Config, promptIds.shape[0], (int)promptIds.shape[1] + maxNewTokens, weight.dtype, weight.device);
            using var scope = NewDisposeScope();
            logits = m.Forward(promptIds, promptMask, Transformer.PositionsFromMask(promptMask), cache, lastOnly: true)
                .squeeze(1).to(ScalarType.Float32).DetachFromDisposeScope();
        }

        public Tensor Allowed()
        {
            var allowed = TopPMask.Allowed(logits!, owner.config.TopMask, owner.config.MinTokensToKeep, owner.alwaysAllowed);
            steps.Add(allowed.clone().DetachFromDisposeScope());
            return allowed;
        }

        public void Advance(Tensor next, Tensor attentionMask, Tensor positions)
        {
            using var scope = NewDisposeScope();
            var newLogits = owner.model.Forward(next, attentionMask, positions, cache, lastOnly: true).squeeze(1).to(ScalarType.Float32).DetachFromDisposeScope();
            logits!.Dispose();
            logits = newLogits;
        }

        public Tensor Recorded()
        {
            if (steps.Count == 0) throw new InvalidOperationException("No token was sampled with this mask.");
            return stack(steps, 1);
        }

        public void Dispose()
        {
            foreach (var t in steps) t.Dispose();
            logits?.Dispose();
            cache?.Dispose();
        }
    }
}
