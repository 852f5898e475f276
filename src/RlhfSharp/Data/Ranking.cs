namespace RlhfSharp.Data;

/// <summary>
/// K responses to one prompt ordered by a labeler, best first (InstructGPT's K-wise comparisons, K = 4..9).
/// </summary>
public sealed record Ranking(string Prompt, IReadOnlyList<string> Responses)
{
    /// <summary>For a pair from a preference file: how much better the first response is (Llama 2's graded margin).</summary>
    public double? Margin { get; init; }

    /// <summary>RewardBench's <c>subset</c> column (e.g. <c>alpacaeval-easy</c>), kept for per-subset accuracy; null when absent.</summary>
    public string? Subset { get; init; }

    /// <summary>
    /// The K(K-1)/2 pairs the ranking implies, each as a <see cref="Preference"/>. InstructGPT (Ouyang et al. 2022,
    /// sec. 3.5) trains on all pairs of one prompt in a single batch element so they are not overfitted separately.
    /// </summary>
    public IEnumerable<Preference> ToPairs()
    {
        for (int i = 0; i < Responses.Count; i++)
            for (int j = i + 1; j < Responses.Count; j++)
                yield return new Preference(Prompt, Responses[i], Responses[j]);
    }
}
