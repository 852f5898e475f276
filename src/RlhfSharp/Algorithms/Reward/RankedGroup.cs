namespace RlhfSharp.Algorithms.Reward;

/// <summary>
/// The K tokenized responses to one prompt (prompt + response ids each), best first. A pair (K = 2) may carry a
/// margin: how much better the first is (Llama 2's graded preferences).
/// </summary>
public sealed record RankedGroup(IReadOnlyList<int[]> Sequences, double? Margin = null);
