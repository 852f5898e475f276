namespace RlhfSharp.Data;

/// <summary>A prompt of <c>rlhf eval</c> with its reference answer, or null when the row has none.</summary>
public sealed record EvalPrompt(string Prompt, string? Reference);
