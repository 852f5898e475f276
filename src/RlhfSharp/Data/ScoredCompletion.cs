namespace RlhfSharp.Data;

/// <summary>
/// A completion with a scalar reward: the data of offline RL (ILQL; trlX's <c>trlx.train(samples=[[prompt, output]],
/// rewards=[r])</c>). Read from <c>prompt</c>/<c>completion</c>/<c>reward</c> rows, or made from rankings by rank
/// (<see cref="FromRanking"/>) and from preference pairs (chosen 1, rejected 0).
/// </summary>
public sealed record ScoredCompletion(string Prompt, string Completion, double Reward)
{
    /// <summary>
    /// The responses of a K-wise ranking scored by rank, best 1, worst 0, evenly spaced: (K − 1 − i)/(K − 1) for the
    /// response ranked i-th (0 best). ILQL normalises rewards over the dataset (trlX <c>make_experience</c>), so only the
    /// order and the even spacing matter; a preference pair is the K = 2 case.
    /// </summary>
    public static IEnumerable<ScoredCompletion> FromRanking(Ranking ranking)
    {
        int k = ranking.Responses.Count;
        return ranking.Responses.Select((r, i) => new ScoredCompletion(ranking.Prompt, r, (double)(k - 1 - i) / (k - 1)));
    }
}
