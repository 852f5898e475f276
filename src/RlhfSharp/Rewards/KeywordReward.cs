using System.Text.RegularExpressions;

namespace RlhfSharp.Rewards;

/// <summary>
/// <c>Weight</c> per match of a regular expression in the completion (or <c>Weight</c> once if it matches at all,
/// when <see cref="CountEachMatch"/> is false). A negative weight makes it a penalty (banned words).
/// </summary>
public sealed class KeywordReward : IRewardFunction
{
    readonly Regex regex;

    /// <param name="pattern">A .NET regular expression, matched case-insensitively unless <paramref name="options"/> says otherwise.</param>
    /// <param name="weight">Reward per match (or for matching at all).</param>
    /// <param name="countEachMatch">Count every match (true) or only whether there is one (false).</param>
    /// <param name="name">Name in logs; defaults to <c>keyword(pattern)</c>.</param>
    /// <param name="options">Regex options.</param>
    public KeywordReward(string pattern, double weight = 1.0, bool countEachMatch = true, string? name = null,
        RegexOptions options = RegexOptions.IgnoreCase)
    {
        try { regex = new Regex(pattern, options | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)); }
        catch (ArgumentException e) { throw new RlhfException($"keyword reward: bad regular expression '{pattern}': {e.Message}", e); }
        Weight = weight;
        CountEachMatch = countEachMatch;
        Name = name ?? $"keyword({pattern})";
    }

    public string Name { get; }
    public double Weight { get; }
    public bool CountEachMatch { get; }

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        Check.SameCount(prompts, completions);
        return completions.Select(c => Weight * (CountEachMatch ? regex.Matches(c).Count : regex.IsMatch(c) ? 1 : 0)).ToArray();
    }
}
