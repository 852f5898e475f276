using RlhfSharp.Rewards;

namespace RlhfSharp.Evaluation;

/// <summary>
/// Pairwise win rate of candidate completions over baseline completions of the same prompts, judged by a reward
/// function (the AlpacaFarm / RL4LMs protocol with a scalar judge instead of an LLM): a higher score wins, equal
/// scores count half.
/// </summary>
public static class WinRate
{
    /// <summary>Scores both lists with <paramref name="judge"/> and compares them prompt by prompt.</summary>
    public static WinRateResult Compute(IRewardFunction judge, IReadOnlyList<string> prompts, IReadOnlyList<string> candidates, IReadOnlyList<string> baselines)
    {
        if (prompts.Count != candidates.Count || prompts.Count != baselines.Count)
            throw new ArgumentException($"{prompts.Count} prompts, {candidates.Count} candidates and {baselines.Count} baselines must match.");
        return FromScores(judge.Score(prompts, candidates), judge.Score(prompts, baselines));
    }

    /// <summary>Compares precomputed scores pairwise.</summary>
    public static WinRateResult FromScores(IReadOnlyList<double> candidate, IReadOnlyList<double> baseline)
    {
        int wins = 0, ties = 0, losses = 0;
        for (int i = 0; i < candidate.Count; i++)
        {
            if (candidate[i] > baseline[i]) wins++;
            else if (candidate[i] < baseline[i]) losses++;
            else ties++;
        }
        int n = wins + ties + losses;
        return new WinRateResult(n == 0 ? double.NaN : (wins + 0.5 * ties) / n, wins, ties, losses);
    }
}
