using System.ComponentModel.DataAnnotations;
using RlhfSharp.Algorithms.Preference;

namespace RlhfSharp.Algorithms.OnlineDpo;

/// <summary>
/// Online (iterative) DPO: each round the current policy answers every prompt twice, the reward model labels the pair,
/// and DPO trains on the fresh pairs against the frozen starting policy (Xu et al. 2023 "Some things are more CRINGE";
/// Guo et al. 2024 "Direct language model alignment from online AI feedback"; TRL <c>OnlineDPOTrainer</c>).
/// </summary>
public sealed record OnlineDpoConfig
{
    /// <summary>Rounds of sample → label → DPO.</summary>
    [Range(1, int.MaxValue)]
    public int Iterations { get; init; } = 4;
    /// <summary>Prompts answered per round (all of them when fewer).</summary>
    [Range(1, int.MaxValue)]
    public int PromptsPerIteration { get; init; } = 256;
    [Range(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 256;
    /// <summary>Sampling temperature of the two answers (TRL OnlineDPOConfig temperature = 0.9).</summary>
    [Range(0.0, double.MaxValue)]
    public double Temperature { get; init; } = 0.9;
    /// <summary>The DPO update of each round: one pass over that round's pairs.</summary>
    public DpoConfig Dpo { get; init; } = new() { Epochs = 1 };
    public ulong Seed { get; init; } = 42;
}
