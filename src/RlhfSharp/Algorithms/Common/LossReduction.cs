namespace RlhfSharp.Algorithms.Common;

/// <summary>
/// How a per-token loss [B, T] becomes a scalar. Source: OpenRLHF@3c3be62 <c>openrlhf/models/loss.py</c>
/// (<c>aggregate_loss</c>, <c>token_level_loss=True/False</c>).
/// </summary>
public enum LossReduction
{
    /// <summary><c>sum(l·m) / sum(m)</c>: every valid token of the batch weighs the same (OpenRLHF default, TRL PPO).</summary>
    TokenMean,

    /// <summary><c>mean_b(sum_t(l·m)_b / sum_t(m)_b)</c>: every sequence weighs the same, whatever its length.</summary>
    SequenceMean,
}
