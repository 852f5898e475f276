namespace RlhfSharp.Evaluation;

/// <summary>A corpus TER: <paramref name="Score"/> = 100 · <paramref name="Edits"/> / <paramref name="ReferenceLength"/> (lower is better).</summary>
public sealed record TerScore(double Score, double Edits, double ReferenceLength);
