namespace RlhfSharp.Rewards;

/// <summary>Argument checks shared by the reward functions.</summary>
internal static class Check
{
    public static void SameCount(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        if (prompts.Count != completions.Count)
            throw new RlhfException($"{prompts.Count} prompts but {completions.Count} completions: give one prompt per completion.");
    }
}
