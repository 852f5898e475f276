using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Nlpo;

/// <summary>
/// When the masking policy follows the actor: RL4LMs' <c>NLPO.learn</c> (allenai/RL4LMs@97df0bd
/// <c>rl4lms/algorithms/nlpo/nlpo.py</c>) deep-copies the policy after the rollouts of every
/// <c>target_update_iterations</c>-th batch and before its update. Both masking policies (causal and encoder-decoder)
/// copy the actor's weights into their frozen copy on that schedule.
/// </summary>
sealed class MaskRefresh(nn.Module policy, nn.Module copy, int targetUpdateIterations)
{
    /// <summary>How many times the copy was refreshed in this process.</summary>
    public int Refreshes { get; private set; }

    /// <summary>Copies the actor's current weights into the masking copy (names match: the copy is the actor's architecture).</summary>
    public void Copy()
    {
        using var _ = no_grad();
        var current = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in copy.named_parameters()) p.copy_(current[name]);
    }

    /// <summary>After rollout batch <paramref name="step"/> (0-based): refresh when it closes a period.</summary>
    public void AfterRollout(int step)
    {
        if ((step + 1) % targetUpdateIterations != 0) return;
        Copy();
        Refreshes++;
    }
}
