namespace RlhfSharp.Data;

/// <summary>
/// A pairwise human preference: for <paramref name="Prompt"/>, <paramref name="Chosen"/> was preferred to
/// <paramref name="Rejected"/>. The completions do not repeat the prompt.
/// </summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="Chosen">The preferred completion.</param>
/// <param name="Rejected">The other completion.</param>
/// <param name="Margin">How strongly chosen wins, when the data says (TRL RewardTrainer's <c>margin</c> column, as in
/// Llama 2's margin loss); null otherwise.</param>
public sealed record Preference(string Prompt, string Chosen, string Rejected, double? Margin = null);
