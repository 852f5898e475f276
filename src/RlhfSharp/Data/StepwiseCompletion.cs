namespace RlhfSharp.Data;

/// <summary>
/// A completion in steps with a label per step, for a process reward model (TRL's stepwise-supervision format: <c>prompt</c>,
/// <c>completions</c> = the steps, <c>labels</c>). A label is the probability that the step is good: 1 or 0 (TRL's booleans;
/// PRM800K's ratings +1 → 1, 0 and −1 → 0 as TRL's <c>examples/datasets/prm800k.py</c> maps them) or a soft value in
/// between (Math-Shepherd's fraction of rollouts from the step that reach the right answer, Wang et al. 2023).
/// </summary>
public sealed record StepwiseCompletion(string Prompt, IReadOnlyList<string> Steps, IReadOnlyList<double> Labels);
