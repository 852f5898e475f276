namespace RlhfSharp.Rewards;

/// <summary>
/// A weighted sum of named rewards: <c>Σ weightᵢ · rewardᵢ</c>. <see cref="ScoreParts"/> returns each part too,
/// for logging what the total is made of.
/// </summary>
public sealed class CompositeReward : IRewardFunction
{
    readonly (IRewardFunction Reward, double Weight)[] parts;

    public CompositeReward(IEnumerable<(IRewardFunction Reward, double Weight)> parts, string name = "composite")
    {
        this.parts = parts.ToArray();
        if (this.parts.Length == 0) throw new RlhfException("a composite reward needs at least one part.");
        var duplicate = this.parts.GroupBy(p => p.Reward.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new RlhfException($"composite reward: two parts are named '{duplicate.Key}'; names must be unique.");
        Name = name;
    }

    public string Name { get; }

    /// <summary>The parts and their weights, in order.</summary>
    public IReadOnlyList<(IRewardFunction Reward, double Weight)> Parts => parts;

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions) =>
        ScoreParts(prompts, completions).Total;

    /// <summary>The weighted total and each part's unweighted scores (by part name).</summary>
    public (double[] Total, IReadOnlyDictionary<string, double[]> Parts) ScoreParts(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        Check.SameCount(prompts, completions);
        var total = new double[completions.Count];
        var byName = new Dictionary<string, double[]>();
        foreach (var (reward, weight) in parts)
        {
            var s = reward.Score(prompts, completions);
            if (s.Length != total.Length) throw new RlhfException($"reward '{reward.Name}' returned {s.Length} scores for {total.Length} completions.");
            for (int i = 0; i < total.Length; i++) total[i] += weight * s[i];
            byName[reward.Name] = s;
        }
        return (total, byName);
    }
}
