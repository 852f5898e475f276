namespace RlhfSharp.Data;

/// <summary>A prompt for online RL (PPO, GRPO, …): the policy writes the completion.</summary>
public sealed record PromptRecord(string Prompt);
