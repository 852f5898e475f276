namespace RlhfSharp.Data;

/// <summary>Plain text for language modelling: pre-training, or the PPO-ptx mix (InstructGPT eq. 2).</summary>
public sealed record TextRecord(string Text);
