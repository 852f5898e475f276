namespace RlhfSharp.Rewards;

/// <summary>
/// Scores computed once in a big batch and looked up afterwards, so a consumer that asks prompt by prompt (the
/// annotator pool ranking K responses at a time) does not run the scorer thousands of times. Misses go to the inner
/// reward.
/// </summary>
public sealed class CachedReward(IRewardFunction inner) : IRewardFunction
{
    readonly Dictionary<(string, string), double> scores = [];

    public string Name => inner.Name;

    public void Add(IReadOnlyList<string> prompts, IReadOnlyList<string> completions, IReadOnlyList<double> values)
    {
        for (int i = 0; i < prompts.Count; i++) scores[(prompts[i], completions[i])] = values[i];
    }

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        var result = new double[prompts.Count];
        var missing = Enumerable.Range(0, prompts.Count).Where(i => !scores.TryGetValue((prompts[i], completions[i]), out result[i])).ToList();
        if (missing.Count > 0)
        {
            var computed = inner.Score(missing.Select(i => prompts[i]).ToList(), missing.Select(i => completions[i]).ToList());
            for (int k = 0; k < missing.Count; k++) { result[missing[k]] = computed[k]; scores[(prompts[missing[k]], completions[missing[k]])] = computed[k]; }
        }
        return result;
    }
}
