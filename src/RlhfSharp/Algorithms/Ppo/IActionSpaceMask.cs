using RlhfSharp.Generation;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// A restricted action space for <see cref="PpoTrainer"/> (NLPO's masking policy): it decides the allowed tokens of
/// every rollout position while the rollouts are sampled, and the trainer applies the same sets again to the actor's
/// distribution in the old log-probs and in the loss (<see cref="MaskedActionSpace"/>).
/// </summary>
public interface IActionSpaceMask
{
    /// <summary>Modules it owns, saved and restored with the stage's state (by file name).</summary>
    IReadOnlyDictionary<string, nn.Module> Modules { get; }

    /// <summary>A recorder for one rollout batch: the sampler's <see cref="ITokenMask"/>, keeping each step's allowed set.</summary>
    IRecordedTokenMask NewRollout();

    /// <summary>Called after the rollouts of step <paramref name="step"/> (0-based) are scored and before the update.</summary>
    void AfterRollout(int step);
}

/// <summary>An <see cref="ITokenMask"/> that keeps what it allowed.</summary>
public interface IRecordedTokenMask : ITokenMask, IDisposable
{
    /// <summary>(B, N, V) bool: the allowed tokens of each of the N sampled positions, in the caller's dispose scope.</summary>
    Tensor Recorded();
}
