namespace RlhfSharp.Data;

/// <summary>
/// An unpaired judgement for KTO (Ethayarajh et al. 2024; TRL's unpaired preference format): the completion is
/// desirable (<paramref name="Label"/> true) or undesirable (false).
/// </summary>
public sealed record LabeledCompletion(string Prompt, string Completion, bool Label);
