namespace RlhfSharp.Rewards;

/// <summary>
/// Rewards a completion for being close to a target length in words (<see cref="Words.Tokenize"/>):
/// <c>−PenaltyPerWord · max(0, |n − TargetWords| − Tolerance)</c>, so 0 is the best score.
/// </summary>
public sealed record LengthReward(int TargetWords, double PenaltyPerWord = 0.01, int Tolerance = 0) : IRewardFunction
{
    public string Name => "length";

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        Check.SameCount(prompts, completions);
        if (TargetWords < 0 || PenaltyPerWord < 0 || Tolerance < 0)
            throw new RlhfException($"length reward: target ({TargetWords}), penalty ({PenaltyPerWord}) and tolerance ({Tolerance}) must be ≥ 0.");
        return completions.Select(c => -PenaltyPerWord * Math.Max(0, Math.Abs(Words.Tokenize(c).Length - TargetWords) - Tolerance)).ToArray();
    }
}
