namespace RlhfSharp.Training;

/// <summary>What a trainer reports after each step, for a progress bar or a log.</summary>
public sealed record TrainingProgress(string Stage, int Step, int TotalSteps, IReadOnlyDictionary<string, double> Metrics);
