namespace RlhfSharp.Rewards;

/// <summary>
/// A reward computed from text: one score per (prompt, completion) pair, higher is better. Batched so that
/// model-based rewards (a fluency scorer, a reward model) can run one forward pass per batch.
/// </summary>
public interface IRewardFunction
{
    /// <summary>A short name for logs and reports (<c>kindness</c>, <c>length</c>, …).</summary>
    string Name { get; }

    /// <summary>Scores each completion given its prompt; both lists have the same length.</summary>
    double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions);
}
